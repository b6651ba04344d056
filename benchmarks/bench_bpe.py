"""Benchmark of chapter 02's BPE trainer (run by hand: `python
benchmarks/bench_bpe.py`).

1. `train_bpe` on tinyshakespeare.txt, vocab 10,000, <|endoftext|>, against HF
   tokenizers' BPE trainer (Rust, one thread: TOKENIZERS_PARALLELISM=false) in the
   same run; target: within 2x of HF.
2. Pre-tokenization throughput on a 10 MB+ file (tinyshakespeare repeated, documents
   separated by <|endoftext|>, written to a temporary folder and deleted) with 1 and
   2 worker processes; target: >= 15 MB/s with 2. The file is never committed. Both
   timings are best of `--repeat` runs, interleaved so that machine noise hits both
   tools alike."""

import argparse, os, sys, tempfile, time
from pathlib import Path

# HF on one thread, set before importing tokenizers
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import record
from llm_tutorial.files import shared_data_dir
from llm_tutorial.bpe import train_bpe, pretokenize_file, _PAT_RE
from tokenizers import Tokenizer, models, trainers, pre_tokenizers


def hf_train(text: str, vocab_size: int) -> int:
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tr = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator([text], trainer=tr)
    return tk.get_vocab_size()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--copies",
        type=int,
        default=10,
        help="copies of tinyshakespeare in the big file",
    )
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    shared = shared_data_dir()
    if shared is None or not (shared / "tinyshakespeare.txt").is_file():
        print("skipping: ../shared/data/tinyshakespeare.txt not found")
        return
    path = shared / "tinyshakespeare.txt"
    text = path.read_text(encoding="utf-8")
    res = {
        "file": path.name,
        "file_mb": round(path.stat().st_size / 1e6, 3),
        "vocab_size": 10_000,
        "repeat": args.repeat,
    }

    ours, hf, phases = [], [], []
    for _ in range(args.repeat):
        t, _ = timed(lambda: hf_train(text, 10_000))
        hf.append(t)
        ph = {}
        t, (v, m) = timed(
            lambda: train_bpe(path, 10_000, ["<|endoftext|>"], timings=ph)
        )
        ours.append(t)
        phases.append(ph)
        assert len(v) == 10_000
    best = min(range(args.repeat), key=lambda i: ours[i])
    res.update(
        train_bpe_s=round(min(ours), 3),
        hf_bpe_s=round(min(hf), 3),
        ratio_ours_over_hf=round(min(ours) / min(hf), 2),
        train_bpe_median_s=round(sorted(ours)[len(ours) // 2], 3),
        hf_median_s=round(sorted(hf)[len(hf) // 2], 3),
        phases_s={k: round(v, 3) for k, v in phases[best].items()},
    )
    print(
        f"train_bpe {res['train_bpe_s']:.3f} s  HF tokenizers (1 thread) "
        f"{res['hf_bpe_s']:.3f} s  "
        f"ratio {res['ratio_ours_over_hf']:.2f}  (target <= 2)   phases "
        f"{res['phases_s']}"
    )

    with tempfile.TemporaryDirectory() as d:
        big = Path(d) / "big.txt"
        big.write_text("<|endoftext|>".join([text] * args.copies), encoding="utf-8")
        size = big.stat().st_size
        res["big_file_mb"] = round(size / 1e6, 2)
        t_scan = min(
            timed(lambda: sum(1 for _ in _PAT_RE.finditer(text)))[0]
            for _ in range(args.repeat)
        )
        res["regex_scan_mb_s_1core"] = round(len(text.encode()) / t_scan / 1e6, 1)
        for n in (1, 2):
            ts = [
                timed(
                    lambda: pretokenize_file(big, ["<|endoftext|>"], num_processes=n)
                )[0]
                for _ in range(args.repeat)
            ]
            res[f"pretokenize_{n}proc_mb_s"] = round(size / min(ts) / 1e6, 1)
        c0 = time.process_time()
        pretokenize_file(big, ["<|endoftext|>"], num_processes=1)
        # the rate one free core gives
        res["pretokenize_mb_per_cpu_s"] = round(
            size / (time.process_time() - c0) / 1e6, 1
        )
    print(
        f"pre-tokenization of {res['big_file_mb']} MB: 1 process "
        f"{res['pretokenize_1proc_mb_s']} MB/s, "
        f"2 processes {res['pretokenize_2proc_mb_s']} MB/s (target >= 15); regex scan "
        f"alone {res['regex_scan_mb_s_1core']} MB/s; "
        f"{res['pretokenize_mb_per_cpu_s']} MB per CPU-second; 1-min load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    res["load_avg_1min"] = round(os.getloadavg()[0], 2)
    if not args.no_record:
        record("bench_bpe", res)


if __name__ == "__main__":
    main()
