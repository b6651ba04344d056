"""Every chapter runs top to bottom, as `nbdev_test` runs it (`#| slow` cells only with
`bash run.sh test --slow`): one notebook per test, so that pytest-xdist's two workers
share the chapters with the other tests. The chapters that read the shipped data run on
a fresh offline clone instead (tests/test_fresh_clone.py); with --slow they run here
too, with their slow cells."""

import os, subprocess, sys
from pathlib import Path

import pytest

from test_fresh_clone import CHAPTERS as OFFLINE

ROOT = Path(__file__).resolve().parents[1]
SLOW = bool(os.environ.get("LLM_TUTORIAL_SLOW"))
NOTEBOOKS = [
    p.stem
    for p in sorted((ROOT / "nbs").glob("*.ipynb"))
    if not p.name.startswith(("_", ".")) and (SLOW or p.stem not in OFFLINE)
]


@pytest.mark.parametrize("chapter", NOTEBOOKS)
def test_chapter_runs(chapter):
    nbdev_test = Path(sys.executable).parent / "nbdev_test"
    cmd = [str(nbdev_test), "--path", f"nbs/{chapter}.ipynb", "--n_workers", "0"]
    cmd += ["--flags", "slow" if SLOW else ""]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, f"{chapter} failed:\n{p.stdout[-3000:]}{p.stderr[-6000:]}"
