"""The exercise edition (appendix `nbs/93_exercises.ipynb`), both sides, whole book.

- `llm-tutorial exercises new ex && llm-tutorial exercises check ex`: every unit is
  reported "not written" and the exit status is 1;
- each stub, alone among the book's versions of the other units, makes its chapter's
  tests fail (a marked unit that no test would catch is named);
- with the book's answers pasted into every unit, `check` passes every chapter (exit 0)
  and writes nothing into the edition;
- a wrong softmax, an endless loop and a crash are reported in words.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_tutorial.exercises import (
    MARKER,
    _export_package,
    _source,
    chapter_cells,
    locate,
    read_notebook,
    replace_unit,
    run_cells,
)


def cli(*args, timeout=3600) -> subprocess.CompletedProcess:
    "`llm-tutorial exercises ARGS` in a child process (as a learner types it)."
    cmd = [sys.executable, "-m", "llm_tutorial.cli", "exercises", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    "A new exercise edition, written once by the command line."
    root = tmp_path_factory.mktemp("edition") / "ex"
    done = cli("new", root)
    assert done.returncode == 0, done.stderr
    assert "wrote the exercise edition" in done.stdout
    return root


def records(root: Path) -> list[dict]:
    return json.loads((root / MARKER).read_text())["units"]


def paste(root: Path, answers: dict[tuple[str, str], str]) -> None:
    "Write `answers[(notebook, unit)]` over those units, as a learner would."
    for nb_name in {nb for nb, _ in answers}:
        path = root / "nbs" / nb_name
        nb = read_notebook(path)
        for (nb2, name), text in answers.items():
            if nb2 == nb_name:
                i, err = locate(nb, name)
                assert i is not None, err
                cell = nb["cells"][i]
                cell["source"] = replace_unit(_source(cell), name, text)
        path.write_text(json.dumps(nb, indent=1))


def copy_of(edition: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "ex"
    shutil.copytree(edition, dest)
    return dest


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_new_edition_reports_every_unit_not_written(edition):
    recs = records(edition)
    assert len(recs) >= 40
    assert (edition / "README.md").is_file() and (edition / "settings.ini").is_file()
    done = cli("check", edition)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    not_written = [w[-1] for w in lines if w[:2] == ["not", "written"]]
    assert sorted(not_written) == sorted(r["name"] for r in recs)
    assert f"0 pass, 0 fail, {len(recs)} not written" in done.stdout


def test_every_stub_fails_its_chapter(edition):
    "Each stub alone (the book's version of the others) fails its chapter's tests."
    recs = records(edition)
    uncaught = []
    for r in recs:
        nb = read_notebook(edition / "nbs" / r["notebook"])
        book = {
            x["name"]: x["reference"]
            for x in recs
            if x["notebook"] == r["notebook"] and x["name"] != r["name"]
        }
        result = run_cells(chapter_cells(nb, book), timeout=600)
        if result["ok"]:
            uncaught.append(f"{r['notebook']}: {r['name']}")
        else:
            assert "timeout" not in result, (r["name"], result)
    assert not uncaught, f"no test catches these stubs: {uncaught}"


def test_book_answers_pass_every_chapter(edition, tmp_path):
    root = copy_of(edition, tmp_path)
    paste(root, {(r["notebook"], r["name"]): r["reference"] for r in records(root)})
    before = tree_hash(root)
    done = cli("check", root)
    assert done.returncode == 0, done.stdout + done.stderr
    n = len(records(root))
    assert f"{n} pass, 0 fail, 0 not written of {n} units" in done.stdout
    assert tree_hash(root) == before, "check wrote into the edition"


def test_wrong_softmax_is_explained(edition, tmp_path):
    root = copy_of(edition, tmp_path)
    naive = (
        "def softmax(x: Tensor, dim: int = -1) -> Tensor:\n"
        "    e = torch.exp(x)\n"
        "    return e / e.sum(dim=dim, keepdim=True)\n"
    )
    paste(root, {("04_layers.ipynb", "softmax"): naive})
    done = cli("check", root, "--chapter", "04")
    assert done.returncode == 1
    out = done.stdout
    assert "FAIL         softmax" in out
    assert "nan" in out  # the overflow, named
    assert "test in section “Softmax”: cell" in out  # which test, and its line
    assert "not written  Linear.forward" in out
    assert "0 pass, 1 fail, 7 not written" in out


def test_endless_loop_and_crash(edition, tmp_path):
    root = copy_of(edition, tmp_path)
    loop = "def cross_entropy(inputs, targets):\n    while True:\n        pass\n"
    crash = (
        "def get_lr_cosine_schedule(it, max_learning_rate, min_learning_rate,\n"
        "                           warmup_iters, cosine_cycle_iters):\n"
        "    return max_learning_rate / 0\n"
    )
    paste(root, {("06_optim.ipynb", "cross_entropy"): loop})
    paste(root, {("06_optim.ipynb", "get_lr_cosine_schedule"): crash})
    done = cli("check", root, "--chapter", "6", "--timeout", "20")
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "still running after 20 s" in out
    assert "ZeroDivisionError: float division by zero" in out
    assert "raised at cell" in out  # the learner's line
    assert "Traceback" not in out + done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "{tmp}"], "is not an exercise edition"),
        (["check", "{tmp}/nothing"], "is not a folder"),
        (["check", "{ed}", "--chapter", "42"], "no chapter '42' with exercises"),
        (["check", "{ed}", "--timeout", "0"], "--timeout must be positive"),
        (["new", "{ed}"], "already holds files"),
    ],
)
def test_bad_input_is_one_line(edition, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, ed=edition) for a in args]
    done = cli(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_unreadable_notebook(edition, tmp_path):
    root = copy_of(edition, tmp_path)
    (root / "nbs" / "05_model.ipynb").write_text('{"cells": [')
    done = cli("check", root)  # found before any chapter runs
    assert done.returncode == 2
    assert "05_model.ipynb is not a readable notebook" in done.stderr
    assert done.stdout == ""


def _own_softmax(root: Path) -> subprocess.CompletedProcess:
    "`llm_tutorial.cs336.run_softmax` with PYTHONPATH at the edition: the learner's."
    code = (
        "import torch, llm_tutorial\n"
        "from llm_tutorial.cs336 import run_softmax\n"
        "print(llm_tutorial.__file__)\n"
        "x = torch.tensor([[1000.0, 0.0, -5.0]])\n"
        "print(torch.allclose(run_softmax(x, -1), torch.softmax(x, -1)))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(root))
    cmd = [sys.executable, "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)


def test_own_package_for_cs336(edition, tmp_path):
    "nbdev_export in the edition writes the learner's llm_tutorial, used by cs336."
    root = copy_of(edition, tmp_path)
    assert (root / "llm_tutorial" / "layers.py").is_file()
    done = _own_softmax(root)
    assert str(root / "llm_tutorial") in done.stdout, done.stderr
    assert "NotImplementedError: exercise: a numerically stable softmax" in done.stderr
    answer = [r["reference"] for r in records(root) if r["name"] == "softmax"]
    paste(root, {("04_layers.ipynb", "softmax"): answer[0]})
    assert _export_package(root)
    done = _own_softmax(root)
    assert done.stdout.split() == [str(root / "llm_tutorial" / "__init__.py"), "True"]


CHAPTERS = (
    "00_pytorch 01_bytes 01b_corpus 02_bpe 03_tokenizer 04_layers 05_model 06_optim "
    "07_data 08_checkpoint 09_train 10_generate 10b_cli 11_fast"
).split()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_ends_with_exercises(chapter):
    "At least 3 exercises, one of each kind, with folded hints or solutions."
    path = Path(__file__).resolve().parents[1] / "nbs" / f"{chapter}.ipynb"
    cells = read_notebook(path)["cells"]
    start = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown" and _source(c).startswith("## Exercises")
    ]
    assert start, f"{chapter} has no '## Exercises' section"
    text = "\n".join(
        _source(c) for c in cells[start[0] :] if c["cell_type"] == "markdown"
    )
    kinds = [
        k.lower() for k in re.findall(r"(?:\*\*\d+\. |### Exercise \d+ \()(\w+)", text)
    ]
    assert len(kinds) >= 3, kinds
    assert {"implement", "predict", "experiment"} <= set(kinds), kinds
    assert text.count("<details>") >= 3
    code = [_source(c) for c in cells[start[0] :] if c["cell_type"] == "code"]
    checked = [s for s in code if re.search(r"\btest_\w+\(|\bassert ", s)]
    assert len(checked) >= 2, "the exercises' answers are not checked"
