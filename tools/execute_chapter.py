"""Execute chapters in place, keeping the saved outputs of their `#| slow` cells.

python tools/execute_chapter.py nbs/09d_train.ipynb [more ...] [--slow]

Without `--slow`, every `#| slow` cell is left out of the run and keeps the output it
had (Jupyter's Run All would instead save the note that it was skipped, which
tests/test_project.py refuses). With `--slow`, every cell runs (LLM_TUTORIAL_SLOW=1).
The chapter's `nbdev_export()` cell never runs (as in nbdev_test): executing one chapter
does not rewrite the package from every notebook; run `nbdev_export` yourself.
Prints each chapter's wall time. Run `nbdev_clean` afterwards."""

import os, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def _is_slow(cell) -> bool:
    "Whether a code cell carries nbdev's `#| slow` flag among its first lines."
    head = cell.source.splitlines()[:5]
    flagged = any(l.replace(" ", "").strip() == "#|slow" for l in head)
    return cell.cell_type == "code" and flagged


def execute(path: Path, run_slow: bool) -> float:
    "Execute `path` in place; returns the seconds it took."
    nb = nbformat.read(path, as_version=4)
    kept = {}
    for i, c in enumerate(nb.cells):
        if (_is_slow(c) and not run_slow) or "nbdev_export(" in c.source:
            kept[i] = c
            nb.cells[i] = nbformat.v4.new_code_cell("pass")
    if run_slow:
        os.environ["LLM_TUTORIAL_SLOW"] = "1"
    t0 = time.perf_counter()
    where = {"metadata": {"path": str(path.parent.resolve())}}
    NotebookClient(nb, timeout=3600, kernel_name="python3", resources=where).execute()
    for i, c in kept.items():
        nb.cells[i] = c
    nbformat.write(nb, path)
    return time.perf_counter() - t0


def main(argv) -> int:
    "Command line: notebooks, then optionally --slow."
    paths = [Path(a) for a in argv if a != "--slow"]
    if not paths:
        print(__doc__)
        return 2
    for p in paths:
        seconds = execute(p, "--slow" in argv)
        print(f"{p}: executed in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
