"""The prepared GPU check: the CS336 TinyStories configuration in float32, bf16 and
bf16 + compile.

Run by hand on a machine with a GPU (no network needed), usually through `bash
benchmarks/gpu_check.sh`, which runs the CUDA tests first:

    python benchmarks/gpu_check.py                 # the three runs on the GPU, recorded
    python benchmarks/gpu_check.py --dry-run       # a tiny model on the CPU: checks
                                                   # the script itself

Each run trains the `cs336-tinystories` preset (vocabulary 10,000, context 256, d_model
512, 4 layers, 16 heads, d_ff 1,344, batch 128) for a fixed number of steps, on the
book's generated story corpus scaled up to `--corpus-mb` MB (written locally: no
download), each mode in its own process. From each run's log it takes the median
tokens/s and MFU of the steps after the first 20% (warm-up, compilation), the last
training loss, the final validation loss and the peak memory, and appends them to
benchmarks/results/gpu_check.jsonl. Target (issue 28): MFU >= 40% for bf16 + compile on
an H100-class GPU."""

import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common

MODES = {
    "float32": dict(dtype="float32", compile=False),
    "bf16": dict(dtype="bfloat16", compile=False),
    "bf16+compile": dict(dtype="bfloat16", compile=True),
}
# A model small enough for a CPU, with the preset's shape otherwise.
DRY_RUN = dict(
    vocab_size=512,
    context_length=64,
    d_model=64,
    num_layers=2,
    num_heads=4,
    d_ff=192,
    batch_size=8,
    bpe_train_bytes=300_000,
)
H100_CLASS = ("H100", "H200")


def one_run(spec: dict) -> None:
    "Child process: train one mode as `spec` says (a JSON dict of TrainConfig fields)."
    from llm_tutorial.config import preset_config
    from llm_tutorial.train import train

    config = preset_config("cs336-tinystories", **spec)
    train(config)


def summarize(out: Path, wall: float) -> dict:
    "The figures of one run, from its log."
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    head = recs[0]
    steps = [r for r in recs if r["kind"] == "train"]
    evals = [r for r in recs if r["kind"] == "eval"]
    kept = steps[len(steps) // 5 :] or steps  # drop warm-up and compilation
    median = lambda xs: sorted(xs)[len(xs) // 2] if xs else None
    mfus = [r["mfu"] for r in kept if r.get("mfu") is not None]
    return {
        "steps": len(steps),
        "tokens_per_s": round(median([r["tokens_per_s"] for r in kept])),
        "mfu": None if not mfus else round(median(mfus), 4),
        "final_train_loss": round(steps[-1]["loss"], 4),
        "val_loss": round(evals[-1]["val_loss"], 4),
        "peak_mem_mb": evals[-1].get("peak_mem_mb") and round(evals[-1]["peak_mem_mb"]),
        "peak_tflops": head["peak_flops"] and round(head["peak_flops"] / 1e12, 2),
        "peak_source": head["peak_source"],
        "flops_per_token": head["flops_per_token"],
        "wall_s": round(wall, 1),
    }


def story_corpus(path: Path, mb: float) -> Path:
    "The book's story corpus (full grammar), `mb` megabytes of it, written once."
    from llm_tutorial.corpus import write_stories

    if not path.is_file():
        write_stories(path, int(mb * 1e6), seed=11)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="a tiny model on the CPU, a few steps: checks the script, not a GPU",
    )
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps per mode (default 600; dry run 6)",
    )
    ap.add_argument(
        "--corpus-mb",
        type=float,
        default=None,
        help="MB of generated stories (default 64; dry run 1)",
    )
    ap.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES)
    )
    ap.add_argument("--device", default=None, help="default cuda (dry run: cpu)")
    ap.add_argument(
        "--work",
        default=None,
        help="folder for the corpus, data cache and runs (default: temporary)",
    )
    ap.add_argument(
        "--results",
        default=None,
        help="folder for gpu_check.jsonl (default benchmarks/results)",
    )
    # child process: one run's JSON spec
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:
        return one_run(json.loads(args.one))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        sys.exit(f"error: unknown mode(s) {bad}; modes are {', '.join(MODES)}")
    steps = args.steps or (6 if args.dry_run else 600)
    corpus_mb = args.corpus_mb or (1.0 if args.dry_run else 64.0)
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            sys.exit(
                "error: no CUDA device here; run with --dry-run to check the script "
                "on the CPU"
            )
    if args.results:
        common.RESULTS = Path(args.results)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu_check-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LLM_TUTORIAL_DATA": str(work / "cache"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    t0 = time.perf_counter()
    corpus = story_corpus(work / f"stories-{corpus_mb:g}MB.txt", corpus_mb)
    print(
        f"corpus: {corpus} ({corpus.stat().st_size / 1e6:.1f} MB, "
        f"{time.perf_counter() - t0:.1f}s)"
    )
    base = dict(
        corpus=str(corpus),
        max_tokens=None,
        max_steps=steps,
        warmup_steps=max(1, steps // 10),
        eval_interval=0,
        eval_batches=4,
        checkpoint_interval=0,
        device=device,
        progress=False,
        bpe_train_bytes=5_000_000,
    )
    if args.dry_run:
        base.update(DRY_RUN)
    results = {
        "device": device,
        "dry_run": args.dry_run,
        "steps": steps,
        "corpus_mb": corpus_mb,
        "batch_size": base.get("batch_size", 128),
        "runs": {},
    }
    for mode in modes:
        spec = {**base, **MODES[mode], "out_dir": str(work / "runs" / mode)}
        print(f"== {mode}: {steps} steps", flush=True)
        t = time.perf_counter()
        p = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(spec)], env=env, cwd=ROOT
        )
        if p.returncode:
            results["runs"][mode] = {"error": f"exit code {p.returncode}"}
            print(f"   {mode} failed (exit code {p.returncode})")
            continue
        r = summarize(Path(spec["out_dir"]), time.perf_counter() - t)
        results["runs"][mode] = r
        mfu = "n/a" if r["mfu"] is None else f"{r['mfu']:.1%}"
        print(
            f"   {r['tokens_per_s']:,} tokens/s, MFU {mfu} of {r['peak_tflops']} "
            "TFLOP/s "
            f"({r['peak_source']}), loss {r['final_train_loss']:.3f} (validation "
            f"{r['val_loss']:.3f}), "
            f"peak memory {r['peak_mem_mb']} MiB, {r['wall_s']:.0f}s",
            flush=True,
        )
    best = results["runs"].get("bf16+compile", {})
    source = best.get("peak_source", "")
    if (
        not args.dry_run
        and best.get("mfu") is not None
        and any(k in source for k in H100_CLASS)
    ):
        results["target_mfu_40pct_met"] = best["mfu"] >= 0.40
        print(
            f"bf16 + compile: MFU {best['mfu']:.1%}, target >= 40% "
            f"{'met' if results['target_mfu_40pct_met'] else 'NOT met'}"
        )
    line = common.record("gpu_check", results)
    print(f"recorded in {common.RESULTS / 'gpu_check.jsonl'} ({line['when']})")
    failed = [m for m, r in results["runs"].items() if "error" in r]
    if failed:
        sys.exit(f"error: mode(s) {failed} failed")


if __name__ == "__main__":
    main()
