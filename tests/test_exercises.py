"""The exercise edition (appendix `nbs/95_exercises.ipynb`), graded by spec tests.

- a new edition: `check --status` and `check` report every unit "not written";
- every unit's spec test rejects a unit that raises, and passes the book's answers
  pasted into a whole edition (exit 0, nothing written into the edition);
- the runner: a wrong softmax explained, an endless loop stopped, a crash reported with
  the learner's line, Ctrl-C, a detached process, bad input as one line (exit 2).
The typical wrong versions and the correct versions unlike the book's, unit by unit,
are in tests/test_spec_*.py.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_tutorial.exercises import (
    MARKER,
    UNITS,
    _source,
    _warm_socket,
    locate,
    read_notebook,
    replace_unit,
    spec_name,
    warm_stop,
)

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, timeout=600, **kw) -> subprocess.CompletedProcess:
    "`llm-tutorial exercises ARGS` in a child process (as a learner types it)."
    cmd = [sys.executable, "-m", "llm_tutorial.cli", "exercises", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


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
    assert len(recs) == len(UNITS) >= 40
    assert (edition / "README.md").is_file() and (edition / "settings.ini").is_file()
    status = cli("check", edition, "--status")  # runs nothing
    assert status.returncode == 0, status.stderr
    assert "spec tests" not in status.stdout
    done = cli("check", edition)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    not_written = [w[-1] for w in lines if w[:2] == ["not", "written"]]
    assert sorted(not_written) == sorted(r["name"] for r in recs)
    assert f"0 pass, 0 fail, {len(recs)} not written" in done.stdout


def test_every_book_unit_has_a_spec_test():
    "Each unit's notebook defines its spec test and calls it on the book's version."
    for u in UNITS:
        cells = [_source(c) for c in read_notebook(ROOT / "nbs" / u.notebook)["cells"]]
        spec = spec_name(u.name)
        assert any(f"def {spec}(" in s for s in cells), f"{u.notebook}: no {spec}"
        target = u.name.rpartition(".")[0] or u.name
        call = re.compile(rf"^{spec}\({target}\)", re.M)
        assert any(call.search(s) for s in cells), f"{u.notebook}: no {spec}({target})"


def test_every_spec_rejects_a_unit_that_raises(edition, tmp_path):
    "A unit written but wrong everywhere (it raises) fails its spec, every one."
    root = copy_of(edition, tmp_path)
    answers = {}
    for r in records(root):
        text = r["reference"]
        head = text[: text.index(":\n", text.index("def ")) + 2]  # decorators, def
        answers[(r["notebook"], r["name"])] = head + '    raise ValueError("mine")\n'
    paste(root, answers)
    done = cli("check", root)
    assert done.returncode == 1, done.stderr
    n = len(records(root))
    assert f"0 pass, {n} fail, 0 not written of {n} units" in done.stdout, done.stdout
    assert done.stdout.count("ValueError: mine") == n, done.stdout


def test_book_answers_pass_every_unit(edition, tmp_path):
    root = copy_of(edition, tmp_path)
    paste(root, {(r["notebook"], r["name"]): r["reference"] for r in records(root)})
    before = tree_hash(root)
    t0 = time.perf_counter()
    done = cli("check", root)
    print(f"a whole edition graded in {time.perf_counter() - t0:.1f} s")
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
    assert "FAIL         softmax (section “Softmax”)" in out, out
    assert "nan" in out and "maximum" in out  # the overflow, and its cure
    assert "check: expect_close(" in out  # the whole failing statement
    assert "not written  Linear.forward" in out
    assert "0 pass, 1 fail, 7 not written" in out
    one = cli("check", root, "--unit", "softmax")
    assert "of 1 units" in one.stdout and "Linear" not in one.stdout


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
    done = cli("check", root, "--chapter", "6")
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert re.search(r"still running after \d+ s \(the time limit\)", out)
    assert "ZeroDivisionError: float division by zero" in out
    assert "raised at line 3 of your get_lr_cosine_schedule" in out  # the learner's
    assert "Traceback" not in out + done.stderr


def test_huge_output_is_not_reported(edition, tmp_path):
    "What a unit prints never reaches the report, however much it is."
    root = copy_of(edition, tmp_path)
    loud = (
        "def silu(x):\n"
        "    import sys\n"
        "    print('x' * 30_000_000)\n"
        "    print('y' * 30_000_000, file=sys.stderr)\n"
        "    return x\n"
    )
    paste(root, {("04_layers.ipynb", "silu"): loud})
    done = cli("check", root, "--unit", "silu")
    assert done.returncode == 1 and "FAIL         silu" in done.stdout, done.stdout
    assert len(done.stdout) + len(done.stderr) < 5000, len(done.stdout)


def _ours(token: str) -> list[int]:
    "Processes whose command line holds `token`."
    found = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if token.encode() in cmd.read_bytes():
                found.append(int(cmd.parent.name))
        except OSError:
            pass
    return found


def _worker_up(path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


@pytest.fixture
def warm_worker() -> Path:
    "The warm worker running, as the first check of a session leaves it."
    path = _warm_socket()
    if not _worker_up(path):
        code = f"from llm_tutorial.exercises import _warm_worker as w; w({str(path)!r})"
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        deadline = time.monotonic() + 120
        while not _worker_up(path) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert _worker_up(path), "the warm worker did not start"
    return path


def test_warm_worker_same_verdicts(edition, tmp_path, warm_worker):
    "A child forked by the warm worker grades as a cold one; warm_stop ends it."
    root = copy_of(edition, tmp_path)
    wrong = "def silu(x):\n    return x * x.sigmoid() + 1\n"
    paste(root, {("04_layers.ipynb", "silu"): wrong})
    warm = cli("check", root, "--chapter", "04")
    cold_env = os.environ | {"LLM_TUTORIAL_WARM": "0"}
    cold = cli("check", root, "--chapter", "04", env=cold_env)
    assert warm.returncode == cold.returncode == 1, warm.stdout + warm.stderr
    assert "FAIL         silu" in warm.stdout
    def strip(out: str) -> str:
        "Timings and the machine's load vary from run to run; verdicts do not."
        out = re.sub(r"\d+(\.\d+)? s\b", "N s", out)
        return re.sub(r"load \d+(\.\d+)?", "load N", out)

    assert strip(warm.stdout) == strip(cold.stdout)
    assert warm_stop() and not _worker_up(warm_worker)
    assert not warm_worker.exists(), "the worker left its socket behind"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("start", ["cold", "warm"])
def test_ctrl_c_and_detached_processes(edition, tmp_path, start, request):
    "Ctrl-C: one line, exit 130; a process a unit started and detached is stopped."
    env = os.environ | {"LLM_TUTORIAL_WARM": "0" if start == "cold" else "1"}
    if start == "warm":
        request.getfixturevalue("warm_worker")
    root = copy_of(edition, tmp_path)
    token = f"llm-tutorial-test-{os.getpid()}"
    loop = (
        "def cross_entropy(inputs, targets):\n"
        "    import subprocess, sys\n"
        f"    cmd = [sys.executable, '-c', 'import time; time.sleep(600)', '{token}']\n"
        "    subprocess.Popen(cmd, start_new_session=True)\n"
        "    while True:\n"
        "        pass\n"
    )
    paste(root, {("06_optim.ipynb", "cross_entropy"): loop})
    cmd = [sys.executable, "-m", "llm_tutorial.cli", "exercises", "check", str(root)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)  # fmt: skip
    deadline = time.monotonic() + 120
    while not _ours(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ours(token), "the unit never ran"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, out + err
    assert err.strip() == "llm-tutorial exercises: stopped (Ctrl-C)"
    time.sleep(0.5)
    assert not _ours(token), "a process the unit started survived the check"


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "{tmp}"], "is not an exercise edition"),
        (["check", "{tmp}/nothing"], "is not a folder"),
        (["check", "{ed}", "--chapter", "42"], "no chapter '42' with exercises"),
        (["check", "{ed}", "--unit", "sofmax"], "no unit 'sofmax'; units:"),
        (["check", "{ed}", "--chapter", "5", "--unit", "silu"], "units: causal_mask,"),
        (["check", "{ed}", "--timeout", "0"], "--timeout must be positive"),
        (["new", "{ed}"], "already holds files"),
        (["new", "{ed}/README.md/ex"], "cannot write"),
    ],
)
def test_bad_input_is_one_line(edition, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, ed=edition) for a in args]
    done = cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    "damage, message",
    [
        ('{"cells": [', "05_model.ipynb is not a readable notebook"),
        ("[]", "05_model.ipynb is not a notebook: it has no list of cells"),
        ('{"cells": [1, 2]}', "cell 0 is not a notebook cell with text"),
        ('{"cells": [{"source": 5}]}', "cell 0 is not a notebook cell with text"),
        ("", "05_model.ipynb is missing: restore it"),  # "": the file deleted
    ],
)
def test_damaged_notebook(edition, tmp_path, damage, message):
    root = copy_of(edition, tmp_path)
    (root / "nbs" / "05_model.ipynb").write_text(damage)
    if not damage:
        (root / "nbs" / "05_model.ipynb").unlink()
    done = cli("check", root)  # found before anything runs
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "marker, message", [("{", "is damaged"), ('{"units": []}', "lists no units")]
)
def test_damaged_marker(tmp_path, marker, message):
    (tmp_path / MARKER).write_text(marker)
    done = cli("check", tmp_path)  # found before anything runs
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_marker_without_chapters(edition, tmp_path):
    "An older marker (units without `chapter`) still works."
    root = copy_of(edition, tmp_path)
    meta = json.loads((root / MARKER).read_text())
    for u in meta["units"]:
        u.pop("chapter")
    (root / MARKER).write_text(json.dumps(meta))
    done = cli("check", root, "--chapter", "4", "--status")
    assert done.returncode == 0, done.stderr
    assert "not written  Linear.forward" in done.stdout


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
    export = "from nbdev.doclinks import nbdev_export as e; e()"  # as the learner does
    assert subprocess.run([sys.executable, "-c", export], cwd=root).returncode == 0
    done = _own_softmax(root)
    assert done.stdout.split() == [str(root / "llm_tutorial" / "__init__.py"), "True"]


CHAPTERS = (
    "00_pytorch 01_bytes 01b_corpus 02_bpe 03_tokenizer 04_layers 05_model 06_optim "
    "07_data 08_checkpoint 09d_train 10_generate 10b_job 10c_cli 11_fast"
).split()
KINDS = "Implement|Predict, then run|Experiment"
HEADING = re.compile(rf"^### Exercise (\d+) · ({KINDS}): ")
LEVELS = re.compile(r"^\*\*Difficulty\*\* [★☆]{3} · \*\*importance\*\* [●○]{3} · ab")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_ends_with_exercises(chapter):
    "One format: numbered exercises of the three kinds, levels, folded hints, checks."
    cells = read_notebook(ROOT / "nbs" / f"{chapter}.ipynb")["cells"]
    start = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown" and _source(c).startswith("## Exercises")
    ]
    assert start, f"{chapter} has no '## Exercises' section"
    md = [_source(c) for c in cells[start[0] :] if c["cell_type"] == "markdown"]
    lines = "\n".join(md).splitlines()
    heads = [(i, HEADING.match(l)) for i, l in enumerate(lines) if l.startswith("###")]
    assert heads and all(m for _, m in heads), [lines[i] for i, m in heads if not m]
    assert [int(m[1]) for _, m in heads] == list(range(1, len(heads) + 1))
    assert {"Implement", "Predict, then run", "Experiment"} <= {m[2] for _, m in heads}
    for i, _ in heads:
        assert LEVELS.match(lines[i + 1]), f"{chapter}: no levels under {lines[i]}"
    assert "\n".join(md).count("<details>") >= 3
    code = [_source(c) for c in cells[start[0] :] if c["cell_type"] == "code"]
    checked = [s for s in code if re.search(r"\btest_\w+\(|\bassert ", s)]
    assert len(checked) >= 2, "the exercises' answers are not checked"
    units = {u.name.split(".")[-1] for u in UNITS if u.notebook == f"{chapter}.ipynb"}
    mine = {m for s in code for m in re.findall(r"^def my_(\w+)", s, re.M)}
    assert not mine & units, f"my_* duplicates of units: {mine & units}"


def test_a_chapter_in_parts():
    "`--chapter 09` picks the units of 09a-09d; `--chapter 01` only chapter 01's."
    from llm_tutorial.exercises import _pick

    recs = [
        dict(chapter=nb.split("_")[0], notebook=nb, name=nb)
        for nb in ["01_bytes.ipynb", "01b_corpus.ipynb", "09b_evaluate.ipynb",
                   "09d_train.ipynb"]  # fmt: skip
    ]
    names = lambda chapter: [r["name"] for r in _pick(recs, chapter, None)]  # noqa: E731
    assert names("9") == names("09") == ["09b_evaluate.ipynb", "09d_train.ipynb"]
    assert names("01") == ["01_bytes.ipynb"] and names("09d") == ["09d_train.ipynb"]
