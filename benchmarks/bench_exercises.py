"""How long a learner waits for a verdict (issue 38): `llm-tutorial exercises check`
on an edition with the book's answers pasted in, one unit at a time (`--unit NAME`:
what a learner runs after writing one) and the whole edition at once.

python benchmarks/bench_exercises.py [--units softmax,get_batch]

Targets (quiet 2-core machine): <= 2 s a unit, <= 60 s the whole edition. Each time is
the wall time of the command. The first check of a session starts cold (its child
imports PyTorch) and leaves the warm worker (appendix F) that the later checks fork
from: the script stops any worker first, times that cold check, waits for the worker,
then times every unit and the whole edition warm. Appends a line to
benchmarks/results/bench_exercises.jsonl."""

import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

from common import record

from llm_tutorial.exercises import (
    MARKER, _source, _warm_socket, locate, new_edition, read_notebook, replace_unit,
    warm_stop,
)  # fmt: skip


def paste_answers(root: Path) -> list[dict]:
    "The book's version of every unit, written into the edition as a learner would."
    units = json.loads((root / MARKER).read_text())["units"]
    for name in dict.fromkeys(u["notebook"] for u in units):
        nb = read_notebook(root / "nbs" / name)
        for u in (u for u in units if u["notebook"] == name):
            cell = nb["cells"][locate(nb, u["name"])[0]]
            cell["source"] = replace_unit(_source(cell), u["name"], u["reference"])
        (root / "nbs" / name).write_text(json.dumps(nb))
    return units


def check(root: Path, *args) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "llm_tutorial.cli", "exercises", "check", str(root)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd + list(args), capture_output=True, text=True)
    return time.perf_counter() - t0, done


def wait_for_worker(timeout: float = 120) -> None:
    "Until the warm worker the cold check started answers on its socket."
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(_warm_socket()))
                return
            except OSError:
                time.sleep(0.2)
    raise SystemExit("the warm worker did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", help="comma-separated units (default: all)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ex"
        new_edition(root)
        units = paste_answers(root)
        names = a.units.split(",") if a.units else [u["name"] for u in units]
        warm_stop()
        cold, done = check(root, "--unit", names[0])
        assert done.returncode == 0, done.stdout + done.stderr
        print(f"first check, cold ({names[0]}): {cold:.2f} s", flush=True)
        wait_for_worker()
        per_unit = {}
        for n in names:
            seconds, done = check(root, "--unit", n)
            assert done.returncode == 0, done.stdout + done.stderr
            per_unit[n] = round(seconds, 2)
            print(f"{n:36} {seconds:5.2f} s", flush=True)
        whole, done = check(root)
        assert done.returncode == 0, done.stdout + done.stderr
    worst = max(per_unit, key=per_unit.get)
    print(f"slowest unit: {worst} {per_unit[worst]:.2f} s; whole edition "
          f"({len(units)} units): {whole:.1f} s")  # fmt: skip
    record("bench_exercises", {"first_check_cold_s": round(cold, 2),
                               "per_unit_s": per_unit, "whole_edition_s": whole,
                               "units": len(units)})  # fmt: skip


if __name__ == "__main__":
    main()
