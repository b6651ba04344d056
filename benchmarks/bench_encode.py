"""Encoding throughput on tinyshakespeare.txt with the GPT-2 vocabulary (run by hand):

python benchmarks/bench_encode.py [--repeat 5] [--scale 10] [--no-record]

One process: our pure-Python `Tokenizer.encode` (cold and warm pre-token cache, and
with the `regex` engine only), tiktoken (Rust) and HF tokenizers (Rust). Files:
`Tokenizer.encode_file` with 1 and 2 worker processes on the text repeated `--scale`
times (so process start-up is amortised), against tiktoken single-thread on the same
file (read + encode + write as uint16). Appends one line to
benchmarks/results/bench_encode.jsonl via common.record."""

import argparse, json, os, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import best_of, record  # noqa: E402

import numpy as np  # noqa: E402
from llm_tutorial.tokenizer import Tokenizer  # noqa: E402
from llm_tutorial.files import shared_data_dir  # noqa: E402

GPT2_VOCAB, GPT2_MERGES = (
    "6c7ea1a7e38e3a7f062df639a5b80947f075ffe6",
    "6d1cbeee0f20b3d9449abfede4726ed8212e3aee",
)


def hf_gpt2(cache: Path):
    from tokenizers import Tokenizer as HFTokenizer

    bl = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": True,
        "use_regex": True,
    }
    spec = {
        "version": "1.0",
        "model": {
            "type": "BPE",
            "vocab": json.loads((cache / GPT2_VOCAB).read_text(encoding="utf-8")),
            "merges": (cache / GPT2_MERGES)
            .read_text(encoding="utf-8")
            .split("\n")[1:-1],
        },
        "pre_tokenizer": bl,
        "decoder": bl,
    }
    return HFTokenizer.from_str(json.dumps(spec))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="best of this many runs (single-process figures)",
    )
    ap.add_argument(
        "--scale",
        type=int,
        default=10,
        help="file benchmarks use tinyshakespeare repeated this many times",
    )
    ap.add_argument(
        "--no-record",
        action="store_true",
        help="print only, do not append to results/bench_encode.jsonl",
    )
    args = ap.parse_args()

    shared = shared_data_dir()
    if shared is None or not (shared / "tiktoken_cache" / GPT2_VOCAB).is_file():
        sys.exit(
            "bench_encode needs ../shared/data (tinyshakespeare.txt and "
            "tiktoken_cache/); not found"
        )
    cache = shared / "tiktoken_cache"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
    import tiktoken

    text = (shared / "tinyshakespeare.txt").read_text(encoding="utf-8")
    mb = len(text.encode("utf-8")) / 1e6
    enc = tiktoken.get_encoding("gpt2")
    ref = enc.encode_ordinary(text)
    res = {
        "text": "tinyshakespeare.txt",
        "text_mb": round(mb, 3),
        "tokens": len(ref),
        "repeat": args.repeat,
    }

    tok = Tokenizer.from_files(cache / GPT2_VOCAB, cache / GPT2_MERGES)
    t0 = time.perf_counter()
    ours = tok.encode(text)
    cold = time.perf_counter() - t0
    assert ours == ref, "our encoding differs from tiktoken's"
    speeds = {
        "ours_cold_cache": mb / cold,
        "ours_warm_cache": mb / best_of(lambda: tok.encode(text), args.repeat),
    }
    slow = Tokenizer(tok.vocab, tok.merges)
    slow._ascii_re = None
    slow.encode(text)
    speeds["ours_regex_engine_only"] = mb / best_of(
        lambda: slow.encode(text), args.repeat
    )
    speeds["tiktoken"] = mb / best_of(lambda: enc.encode_ordinary(text), args.repeat)
    hf = hf_gpt2(cache)
    assert hf.encode(text).ids == ref, "HF tokenizers' encoding differs from tiktoken's"
    speeds["hf_tokenizers"] = mb / best_of(
        lambda: hf.encode(text), max(1, args.repeat // 2)
    )

    with tempfile.TemporaryDirectory() as d:
        big = Path(d) / "big.txt"
        big.write_text(text * args.scale, encoding="utf-8")
        big_mb = big.stat().st_size / 1e6
        res["file_mb"] = round(big_mb, 3)

        def tiktoken_file():
            ids = enc.encode_ordinary(big.read_text(encoding="utf-8"))
            np.array(ids, dtype=np.uint16).tofile(Path(d) / "tt.bin")

        speeds["file_tiktoken_1_thread"] = big_mb / best_of(tiktoken_file, 2)
        # a fresh tokenizer each time (cold cache); worker start-up included, file
        # loading not
        for w in (1, 2):
            fresh = Tokenizer(tok.vocab, tok.merges)
            t0 = time.perf_counter()
            fresh.encode_file(
                big, Path(d) / f"ours{w}.bin", num_workers=w, progress=False
            )
            t = time.perf_counter() - t0
            speeds[f"file_ours_{w}_workers"] = big_mb / t
            assert np.array_equal(
                np.fromfile(Path(d) / f"ours{w}.bin", dtype=np.uint16),
                np.fromfile(Path(d) / "tt.bin", dtype=np.uint16),
            )

    res["mb_per_s"] = {k: round(v, 2) for k, v in speeds.items()}
    res["ratios"] = {
        "ours_warm_vs_tiktoken": round(
            speeds["ours_warm_cache"] / speeds["tiktoken"], 2
        ),
        "ours_cold_vs_tiktoken": round(
            speeds["ours_cold_cache"] / speeds["tiktoken"], 2
        ),
        "ours_regex_only_vs_tiktoken": round(
            speeds["ours_regex_engine_only"] / speeds["tiktoken"], 2
        ),
        "hf_vs_tiktoken": round(speeds["hf_tokenizers"] / speeds["tiktoken"], 2),
        "file_ours_2_workers_vs_tiktoken": round(
            speeds["file_ours_2_workers"] / speeds["file_tiktoken_1_thread"], 2
        ),
    }
    res["note"] = (
        "file_* include reading, encoding and writing uint16; file_ours_* start from "
        "a fresh tokenizer (cold cache)"
    )
    print(
        f"tinyshakespeare.txt: {mb:.2f} MB, {len(ref):,} tokens; file benchmarks on "
        f"{res['file_mb']:.1f} MB"
    )
    for k, v in speeds.items():
        print(f"  {k:26} {v:7.2f} MB/s")
    for k, v in res["ratios"].items():
        print(f"  {k:34} {v:.2f}x")
    res["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(
        f"  load average (1 min) at the end: {res['load_average_1min']} on "
        f"{os.cpu_count()} cores"
    )
    if not args.no_record:
        record("bench_encode", res)


if __name__ == "__main__":
    main()
