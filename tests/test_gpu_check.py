"""benchmarks/gpu_check.sh end to end in its dry-run mode (tiny model, CPU): the CUDA
tests run on the CPU, then the three training modes (float32, bf16, bf16 + compile)
each write their figures."""

import json, math, os, subprocess, sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


SLOW = pytest.mark.skipif(
    not os.environ.get("LLM_TUTORIAL_SLOW"),
    reason="about 6 minutes on 2 cores (CUDA tests on the CPU, then torch.compile): "
    "bash run.sh test --slow runs it",
)


def check_runs(res: dict, modes: list[str]) -> None:
    "The figures of each training mode of a dry run."
    assert res["dry_run"] and res["device"] == "cpu"
    assert sorted(res["runs"]) == sorted(modes)
    for mode, r in res["runs"].items():
        assert "error" not in r, (mode, r)
        assert r["steps"] == res["steps"]
        # MFU against a measured float32 matmul ceiling: bf16 may pass it on one CPU
        # and not on another, so only its sign and finiteness are the machine's
        assert r["tokens_per_s"] > 0 and 0 < r["mfu"] < math.inf, (mode, r)
        assert r["peak_mem_mb"] > 0 and math.isfinite(r["val_loss"]), (mode, r)
        assert "matmul on this CPU" in r["peak_source"]


def test_dry_run_two_modes(tmp_path):
    "The training part of the check, without compile (the quick case)."
    cmd = [sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--modes",
           "float32,bf16", "--corpus-mb", "0.3", "--results", str(tmp_path / "res"),
           "--work", str(tmp_path / "work")]  # fmt: skip
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    lines = (tmp_path / "res" / "gpu_check.jsonl").read_text().splitlines()
    check_runs(json.loads(lines[0])["results"], ["float32", "bf16"])


@SLOW
def test_dry_run_end_to_end(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "2"}
    p = subprocess.run(
        [
            "bash",
            "benchmarks/gpu_check.sh",
            "--dry-run",
            "--results",
            str(tmp_path / "res"),
            "--work",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "== 1/3 CUDA tests (device cpu)" in p.stdout and " passed" in p.stdout
    lines = (tmp_path / "res" / "gpu_check.jsonl").read_text().splitlines()
    assert len(lines) == 1
    res = json.loads(lines[0])["results"]
    check_runs(res, ["bf16", "bf16+compile", "float32"])


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message for a machine without CUDA"
)
def test_without_cuda_says_so(tmp_path):
    p = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1
    assert "no CUDA device here; run with --dry-run" in p.stderr
    assert "Traceback" not in p.stderr


def test_unknown_mode(tmp_path):
    p = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--modes", "fp8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1 and "unknown mode(s) ['fp8']" in p.stderr
