"""Benchmark of chapter 10's KV cache (run by hand: `python
benchmarks/bench_kvcache.py`).

Generates 256 new tokens after a 16-token prompt with `generate(..., use_cache=True)`
and `use_cache=False`, for the main job's model shape (chapter 09's default
TrainConfig; random weights: speed does not depend on them), batch 1, greedy. Reports
tokens/s of each (best of `--repeat`, interleaved so machine noise hits both alike),
the speed-up, and checks that both produce the same tokens. Runs with torch's default
thread count and with 1 thread, and records the machine's load average, because a
busy machine slows both."""

import argparse, os, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch
from benchmarks.common import record
from llm_tutorial.model import TransformerLM
from llm_tutorial.config import TrainConfig
from llm_tutorial.generate import generate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    cfg = TrainConfig().model_config()
    torch.manual_seed(0)
    model = TransformerLM.from_config(cfg).eval()
    prompt = torch.randint(0, cfg.vocab_size, (args.prompt_tokens,)).tolist()
    load_before = os.getloadavg()
    res = {
        "model": {
            k: getattr(cfg, k)
            for k in (
                "vocab_size",
                "context_length",
                "d_model",
                "num_layers",
                "num_heads",
                "d_ff",
            )
        },
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "repeat": args.repeat,
    }
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        times = {True: [], False: []}
        outs = {}
        generate(model, prompt, 8, temperature=0)  # warm-up
        for _ in range(args.repeat):
            for cached in (True, False):
                t0 = time.perf_counter()
                outs[cached] = generate(
                    model, prompt, args.new_tokens, temperature=0, use_cache=cached
                )
                times[cached].append(time.perf_counter() - t0)
        assert len(outs[True]) == args.new_tokens and outs[True] == outs[False], (
            "cache and no cache disagree"
        )
        tps = {c: args.new_tokens / min(t) for c, t in times.items()}
        res[f"threads_{threads}"] = {
            "tokens_per_s_cache": round(tps[True], 1),
            "tokens_per_s_no_cache": round(tps[False], 1),
            "speedup": round(tps[True] / tps[False], 2),
            "same_tokens": True,
        }
        print(
            f"{threads} thread(s): {tps[True]:8.1f} tokens/s with the KV cache, "
            f"{tps[False]:8.1f} without: "
            f"{tps[True] / tps[False]:.1f}x faster (same {args.new_tokens} tokens)"
        )
    torch.set_num_threads(default_threads)
    res["load_avg_before"] = [round(x, 2) for x in load_before]
    res["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"load average before {res['load_avg_before']}, after {res['load_avg_after']} "
        f"on {os.cpu_count()} cores"
    )
    if not args.no_record:
        print(record("bench_kvcache", res))


if __name__ == "__main__":
    main()
