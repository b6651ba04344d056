"""Shared helpers for the benchmark scripts: machine description and JSON-lines results.

Every benchmark appends one JSON object per run to benchmarks/results/<bench>.jsonl:
{"bench": ..., "when": ISO-8601 UTC, "machine": {...}, "results": {...}} The book's
performance appendix (nbs/92_performance.ipynb) renders the latest line of each file."""

import datetime, json, os, platform, subprocess, time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def record(bench: str, results: dict) -> dict:
    """Append one run's `results` for `bench` to benchmarks/results/<bench>.jsonl and
    return the line."""
    line = {
        "bench": bench,
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "machine": machine_info(),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{bench}.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    return line


def best_of(fn, repeat: int = 3) -> float:
    "Smallest wall-clock time of `repeat` calls of `fn()` (seconds)."
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)
