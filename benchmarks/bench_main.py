"""Benchmark of the main job (run by hand: `python benchmarks/bench_main.py`).

Runs `llm-tutorial main` (README command 1) with its default settings in a fresh
output folder, as a subprocess through the installed console script, and records:
wall-clock time of the whole job (set-up of .venv excluded; the data cache is used
when present, `--fresh-cache` makes a new one so corpus, tokenizer and encoding are
built too), the job's own stage times, the validation loss on whole stories against
the entropy floor and their ratio (target <= 1.15), and the share of valid stories at
temperature 1.0 (target >= 0.8). The machine's load average is recorded too: other
processes on a 2-core machine slow the job down."""

import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import record


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--fresh-cache",
        action="store_true",
        help="use an empty data cache (LLM_TUTORIAL_DATA in a temporary folder)",
    )
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument(
        "extra", nargs="*", help="further options for `llm-tutorial main` (after --)"
    )
    args = ap.parse_args()
    exe = Path(sys.executable).parent / "llm-tutorial"
    cmd = [
        str(exe) if exe.exists() else "llm-tutorial",
        "main",
        "--no-progress",
        *args.extra,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        if args.fresh_cache:
            env["LLM_TUTORIAL_DATA"] = str(Path(tmp) / "cache")
        out = Path(tmp) / "run"
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        p = subprocess.run(cmd + ["--out", str(out)], env=env, cwd=ROOT)
        wall = time.perf_counter() - t0
        if p.returncode:
            sys.exit(f"llm-tutorial main failed with exit code {p.returncode}")
        s = json.loads((out / "summary.json").read_text())
    res = {
        "command": "llm-tutorial main " + " ".join(args.extra),
        "fresh_cache": args.fresh_cache,
        "wall_s": round(wall, 1),
        **{
            k: s.get(k)
            for k in (
                "corpus",
                "corpus_s",
                "data_s",
                "train_s",
                "sample_s",
                "total_s",
                "steps",
                "tokens_seen",
                "params",
                "doc_val_loss",
                "entropy_floor",
                "ratio_to_floor",
                "validity",
                "validity_n",
                "temperature",
                "device",
            )
        },
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(
        f"main job ({res['corpus']}): {wall / 60:.2f} min wall; validation "
        f"{res['doc_val_loss']:.4f} vs floor {res['entropy_floor']:.4f} nats/token "
        f"(ratio {res['ratio_to_floor']:.3f}); valid stories {res['validity']:.0%} of "
        f"{res['validity_n']} at T={res['temperature']}; "
        f"load average before {res['load_avg_before']}"
    )
    if not args.no_record:
        print(record("bench_main", res))


if __name__ == "__main__":
    main()
