"""Issue 37: the data-needing chapters on a fresh clone, offline.

The clone: the checkout's files as `git clone` would give them once the work is
committed (`git ls-files`: tracked files and new ones not ignored, so data that
.gitignore hides is missing here too), in a temporary folder with no `shared/data`
above it and no `LLM_TUTORIAL_SHARED`; empty data and tiktoken caches; no network (every
download goes to a closed port, host names do not resolve). Each chapter runs as
`nbdev_test` runs it (nbdev's `test_nb`, `#| slow` cells left out), importing the
clone's package, in one process per group of chapters. No chapter may fail, touch the
network or print that it skipped a demonstration. Prints each chapter's wall time.
"""

import json, os, re, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the chapters that use the shipped data, in two workers of about equal time (measured
# with this test under load: 03 168 s, 08 103 s, 02 71 s, 07 65 s, 00 34 s, 01b 29 s,
# 01 12 s)
WORKERS = [
    ["03_tokenizer", "07_data", "01_bytes"],
    ["08_checkpoint", "02_bpe", "00_pytorch", "01b_corpus", "01c_datasets"],
]
CHAPTERS = sorted(sum(WORKERS, []))
SKIP = re.compile(r"skipping|not available|could not download")
CLOSED = "http://127.0.0.1:9"  # nothing listens on port 9: a download fails at once

# Runs in the clone: nbdev's test_nb on each chapter named in argv, one JSON line each.
WORKER = r"""
import json, socket, sys
import nbdev.test as nt
from nbdev.config import get_config

asked = []


def offline(host, *args, **kwargs):
    asked.append(str(host))
    raise socket.gaierror(f"no network in this test (asked for {host})")


socket.getaddrinfo = offline
seen = {}
run_all = nt.CaptureShell.run_all


def keep(self, nb, *args, **kwargs):
    for cell in nb.cells:  # a cell left out (`#| slow`) keeps no saved output
        cell["outputs"] = []
    seen["nb"] = nb
    return run_all(self, nb, *args, **kwargs)


nt.CaptureShell.run_all = keep


def printed(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            text = o.get("text") or o.get("data", {}).get("text/plain", "")
            out.append("".join(text) if isinstance(text, list) else str(text))
    return "\n".join(out)


cfg = get_config()
for name in sys.argv[1:]:
    asked.clear()
    fn = (cfg.nbs_path / f"{name}.ipynb").absolute()
    ok, secs = nt.test_nb(fn, cfg.tst_flags.split(), basepath=cfg.config_path)
    import llm_tutorial
    from llm_tutorial.files import data_dir, shared_data_dir

    line = dict(chapter=name, ok=ok, seconds=secs, printed=printed(seen["nb"]))
    line |= dict(asked=list(asked), package=llm_tutorial.__file__)
    line |= dict(shared=str(shared_data_dir()), data=str(data_dir()))
    print(json.dumps(line), flush=True)
"""


def _clone(dest: Path) -> None:
    "The files a clone would have: tracked, or new and not ignored."
    cmd = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    names = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True).stdout
    for name in names.decode().split("\0"):
        src = ROOT / name
        if name and src.is_file():  # a tracked file deleted in the tree is gone
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / name)


def _env(tmp: Path, clone: Path) -> dict:
    "A new user's environment: no shared folder, empty caches, no network."
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_TUTORIAL_")}
    for k in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR", "NO_PROXY", "no_proxy"):
        env.pop(k, None)
    env["LLM_TUTORIAL_DATA"] = str(tmp / "cache")
    # as if no shared/data lay above the temporary folder either (it may, on a machine
    # whose /tmp holds one)
    env["LLM_TUTORIAL_SHARED"] = str(tmp / "no-shared-folder")
    # an empty temporary folder: tiktoken's default cache lives there
    env["TMPDIR"] = str(tmp / "tmp")
    env |= {"LLM_TUTORIAL_MIRROR": CLOSED, "MPLBACKEND": "Agg"}
    env |= {k: CLOSED for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    env |= {"PYTHONPATH": str(clone)}  # the clone's package, in workers too
    (tmp / "tmp").mkdir()
    return env


@pytest.mark.parametrize("chapters", WORKERS, ids=["+".join(w) for w in WORKERS])
def test_chapters_run_offline_on_a_fresh_clone(tmp_path, chapters):
    "A group of chapters in one process."
    clone = tmp_path / "clone"
    _clone(clone)
    p = subprocess.run(
        [sys.executable, "-c", WORKER, *chapters],
        cwd=clone,
        env=_env(tmp_path, clone),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    assert [l["chapter"] for l in lines] == chapters, p.stderr[-3000:]
    for l in lines:
        name = l["chapter"]
        print(f"{name}: {l['seconds']:.0f} s")
        assert l["ok"], f"{name} failed on a fresh offline clone:\n{p.stderr[-3000:]}"
        skipped = [s for s in l["printed"].splitlines() if SKIP.search(s)]
        assert not skipped, f"{name} skipped a demonstration: {skipped[:3]}"
        assert not l["asked"], f"{name} tried the network: {l['asked'][:3]}"
        assert l["package"].startswith(str(clone)), l["package"]
        assert l["shared"] == "None", l["shared"]
        assert l["data"] == str(tmp_path / "cache"), l["data"]
    if "03_tokenizer" in chapters:  # GPT-2's files came from the package into the cache
        cached = tmp_path / "cache" / "tiktoken_cache"
        assert len(list(cached.iterdir())) == 2
