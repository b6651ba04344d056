"""Long inputs without whitespace, and long whitespace runs (run by hand):

    python benchmarks/bench_long_inputs.py [--sizes 100000 1000000 10000000]
        [--big-mb 100] [--budget-s 120] [--no-record]

A line of N characters with no whitespace (the letters of tinyshakespeare.txt, repeated)
is one pre-token, and so is a run of N spaces or N newlines. For each kind and size it
times `train_bpe` (vocab 400, no special token), `Tokenizer.encode` with the GPT-2
vocabulary (tokens checked equal to tiktoken's) and `Tokenizer.encode_iterable`
(newlines fed one line per chunk, the others in 4,096-character chunks; tokens checked
equal to tiktoken's too), and prints the slope: the time ratio per 10x size (linear =
10, n log n a bit more). A size is skipped for an operation once its previous size took
more than --budget-s / 10 seconds (the next one would blow the budget); skips are
printed and recorded.

Then the peak memory of `train_bpe` on a --big-mb file (tinyshakespeare repeated; once
without any special token, once with <|endoftext|> between the copies), each run in a
fresh subprocess with 2 worker processes: the subprocess's own peak (VmHWM in
/proc/self/status: its ru_maxrss would include the benchmark's size at the fork) and the
largest worker's ru_maxrss (resource.getrusage(RUSAGE_CHILDREN)). `--ops` with no names
measures only the memory; `--big-mb 0` only the times. Appends one line to
benchmarks/results/bench_long_inputs.jsonl via common.record.
"""

import argparse, json, math, os, subprocess, sys, tempfile, time, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import record  # noqa: E402

from llm_tutorial.bpe import train_bpe  # noqa: E402
from llm_tutorial.tokenizer import Tokenizer  # noqa: E402
from llm_tutorial.files import shared_data_dir  # noqa: E402

GPT2_VOCAB = "6c7ea1a7e38e3a7f062df639a5b80947f075ffe6"
GPT2_MERGES = "6d1cbeee0f20b3d9449abfede4726ed8212e3aee"

RSS_SCRIPT = r"""
import json, resource, sys, time, warnings
from pathlib import Path
from llm_tutorial.bpe import train_bpe
warnings.simplefilter("ignore")
t0 = time.perf_counter()
specials = ["<|endoftext|>"] if sys.argv[2] == "1" else []
train_bpe(sys.argv[1], 400, specials, num_processes=2)
# ru_maxrss of this process would include the benchmark's own size when it forked us
# (Linux keeps the high-water mark across exec); VmHWM belongs to this program's memory
status = Path("/proc/self/status").read_text().splitlines()
hwm = next(l for l in status if l.startswith("VmHWM:"))
me = int(hwm.split()[1]) / 1024   # KiB -> MiB
# the largest worker
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
seconds = round(time.perf_counter() - t0, 1)
print(json.dumps({"seconds": seconds, "parent_mib": round(me),
                  "largest_worker_mib": round(kids)}))
"""


def make_text(kind: str, n: int, letters: str) -> str:
    "A single pre-token of `n` characters: letters, spaces or newlines."
    if kind == "letters":
        return (letters * (n // len(letters) + 1))[:n]
    return {"spaces": " ", "newlines": "\n"}[kind] * n


def chunks_of(kind: str, text: str) -> list[str]:
    """How encode_iterable gets the text: one line per chunk for newlines, else 4,096
    characters."""
    if kind == "newlines":
        return text.splitlines(keepends=True)
    return [text[i : i + 4096] for i in range(0, len(text), 4096)]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_op(op: str, kind: str, text: str, tok, enc, tmp: Path) -> float:
    "Seconds for one operation on `text`, after checking its tokens."
    if op == "train_bpe":
        path = tmp / "line.txt"
        path.write_text(text, encoding="utf-8")
        with warnings.catch_warnings():
            # a run of one character runs out of pairs early
            warnings.simplefilter("ignore")
            t, _ = timed(lambda: train_bpe(path, 400, [], num_processes=1))
        return t
    if op == "encode":
        t, ours = timed(lambda: tok.encode(text))
        assert ours == enc.encode_ordinary(text), (
            f"encode differs from tiktoken on {kind}"
        )
        return t
    chunks = chunks_of(kind, text)
    t, ours = timed(lambda: list(tok.encode_iterable(chunks)))
    assert ours == enc.encode_ordinary(text), (
        f"encode_iterable differs from tiktoken on {kind}"
    )
    return t


def slopes(times: dict) -> dict:
    "Time ratio per 10x size between consecutive measured sizes."
    ns = sorted(int(n) for n in times)
    return {
        f"{a}->{b}": round(
            (times[str(b)] / times[str(a)]) ** (1 / math.log10(b / a)), 1
        )
        for a, b in zip(ns, ns[1:])
        if times[str(a)] > 0
    }


def peak_rss(path: Path, specials: bool) -> dict:
    "Peak RSS of train_bpe on `path` in a fresh subprocess."
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(path), "1" if specials else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000]
    )
    ap.add_argument("--kinds", nargs="+", default=["letters", "spaces", "newlines"])
    ap.add_argument(
        "--ops", nargs="*", default=["train_bpe", "encode", "encode_iterable"]
    )
    ap.add_argument(
        "--budget-s", type=float, default=120.0, help="largest time for one measurement"
    )
    ap.add_argument(
        "--big-mb",
        type=int,
        default=100,
        help="file size for the peak-RSS runs (0: skip)",
    )
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    shared = shared_data_dir()
    if shared is None or not (shared / "tiktoken_cache" / GPT2_VOCAB).is_file():
        sys.exit(
            "bench_long_inputs needs ../shared/data (tinyshakespeare.txt, "
            "tiktoken_cache/)"
        )
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(shared / "tiktoken_cache"))
    import tiktoken

    enc = tiktoken.get_encoding("gpt2")
    cache = shared / "tiktoken_cache"
    shakes = (shared / "tinyshakespeare.txt").read_text(encoding="utf-8")
    letters = "".join(c for c in shakes if c.isalpha())
    res = {"sizes": args.sizes, "seconds": {}, "slope_per_10x": {}, "skipped": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for op in args.ops:
            for kind in args.kinds:
                times, last, prev = {}, 0.0, 0
                for n in args.sizes:
                    # linear guess for this size
                    if prev and last * n / prev > args.budget_s:
                        res["skipped"].append(
                            f"{op} {kind} {n:,}: the previous size took {last:.1f} s"
                        )
                        print(
                            f"  {op:15} {kind:8} {n:>10,}  skipped (previous size "
                            f"{last:.1f} s)"
                        )
                        continue
                    # cold cache
                    tok = Tokenizer.from_files(cache / GPT2_VOCAB, cache / GPT2_MERGES)
                    last = run_op(op, kind, make_text(kind, n, letters), tok, enc, tmp)
                    times[str(n)], prev = round(last, 3), n
                    print(f"  {op:15} {kind:8} {n:>10,}  {last:8.2f} s", flush=True)
                key = f"{op}/{kind}"
                res["seconds"][key], res["slope_per_10x"][key] = times, slopes(times)
                print(
                    f"  {op:15} {kind:8} slope per 10x size: "
                    f"{res['slope_per_10x'][key]}"
                )
        if args.big_mb:
            copies = max(1, round(args.big_mb * 1e6 / len(shakes.encode("utf-8"))))
            rss = {}
            for specials in (False, True):
                path = tmp / "big.txt"
                with open(path, "w", encoding="utf-8") as f:
                    for i in range(copies):
                        f.write(("<|endoftext|>" if specials and i else "") + shakes)
                name = "with_special_tokens" if specials else "without_special_tokens"
                rss[name] = peak_rss(path, specials) | {
                    "file_mb": round(path.stat().st_size / 1e6)
                }
                print(
                    f"  train_bpe peak RSS, {rss[name]['file_mb']} MB file {name}: "
                    f"{rss[name]}",
                    flush=True,
                )
            res["train_bpe_peak_rss"] = rss
    res["load_avg_1min"] = round(os.getloadavg()[0], 2)
    print(f"  1-min load average {res['load_avg_1min']} on {os.cpu_count()} cores")
    if not args.no_record:
        record("bench_long_inputs", res)


if __name__ == "__main__":
    main()
