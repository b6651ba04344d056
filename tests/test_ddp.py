"""Multi-process training: 2 CPU processes under torchrun (gloo) follow the same loss
trajectory as 1 process with the same global batch (different random windows, so
within noise, not bit for bit)."""

import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

ARGS = (
    "--vocab-size 64 --context-length 16 --d-model 32 --num-layers 1 --num-heads 2 "
    "--d-ff 64 --batch-size 32 --max-steps 40 --eval-interval 10 --eval-batches 8 "
    "--warmup-steps 2 --lr 1e-2 --checkpoint-interval 0 --no-progress --device cpu"
).split()


def _log(out) -> list:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _evals(out) -> list:
    return [r["val_loss"] for r in _log(out) if r["kind"] == "eval"]


def test_two_processes_match_one(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not found next to the Python interpreter")
    seq = np.array([(i * 7 + i // 13) % 50 for i in range(20_000)], dtype=np.uint16)
    np.save(tmp_path / "train.npy", seq[:16_000])
    np.save(tmp_path / "val.npy", seq[16_000:])
    data = ["--train-tokens", str(tmp_path / "train.npy"), "--val-tokens",
            str(tmp_path / "val.npy")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    for out, launch in [
        ("one", [sys.executable]),
        ("two", [str(torchrun), "--standalone", "--nproc_per_node", "2"])]:
        cmd = [*launch, "-m", "llm_tutorial.train", *data, *ARGS]
        p = subprocess.run(cmd + ["--out-dir", str(tmp_path / out)],
                           capture_output=True, text=True, env=env, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
    a, b = _evals(tmp_path / "one"), _evals(tmp_path / "two")
    assert len(a) == len(b) == 5
    # same initial weights (same seed) on every rank
    assert a[0] == pytest.approx(b[0], abs=1e-5)
    assert a[-1] < a[0] - 1.0 and b[-1] < b[0] - 1.0  # both learned
    # the same trajectory within noise
    for x, y in zip(a, b):
        assert abs(x - y) < 0.1 * x, (a, b)
    log = _log(tmp_path / "two")
    assert log[0]["kind"] == "config" and log[0]["world_size"] == 2
    steps = [r["step"] for r in log if r["kind"] == "train"]
    assert steps == list(range(1, 41)), "rank 0 alone writes the log, once per step"
