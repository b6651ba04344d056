"""Issue 24: the data-needing chapters on a fresh clone, as a learner runs them.

The shared test folder is hidden, the data cache and tiktoken's cache are empty, and a
local HTTP server stands in for the network (`LLM_TUTORIAL_MIRROR`, Appendix A). Each
chapter runs top to bottom as Jupyter's Run All does (heavy `#| slow` cells skip
themselves); no cell may skip a demonstration for want of data. The wall time of each
chapter is printed (the book's target is under 2 minutes on 2 cores; tests do not assert
times).
"""

import functools, http.server, re, shutil, threading, time
from pathlib import Path

import pytest

from llm_tutorial.corpus import DATASETS, GPT2_CACHE_NAMES, GPT2_URLS
from llm_tutorial.files import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_data_dir()
CHAPTERS = [
    "00_pytorch",
    "01_bytes",
    "01b_corpus",
    "02_bpe",
    "03_tokenizer",
    "07_data",
    "08_checkpoint",
]
SKIP = re.compile(r"skipping|is not available")


def _site(root: Path) -> None:
    "The book's downloads, laid out as a mirror: host/path."

    def put(url: str, src: Path):
        dest = root / url.split("://", 1)[1]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)

    put(DATASETS["tinyshakespeare"]["url"], SHARED / "tinyshakespeare.txt")
    for url, name in zip(GPT2_URLS, GPT2_CACHE_NAMES):
        put(url, SHARED / "tiktoken_cache" / name)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    if SHARED is None:
        pytest.skip("needs ../shared/data to serve Tiny Shakespeare and GPT-2's files")
    root = tmp_path / "site"
    _site(root)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no line per request
            pass

    handler = functools.partial(Quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    monkeypatch.setenv(
        "LLM_TUTORIAL_MIRROR", f"http://127.0.0.1:{srv.server_address[1]}"
    )
    monkeypatch.setenv("LLM_TUTORIAL_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setenv("LLM_TUTORIAL_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("LLM_TUTORIAL_SLOW", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield tmp_path
    srv.shutdown()
    srv.server_close()


def _outputs(nb) -> str:
    "All the text a chapter printed."
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o.get("text", ""))
            elif "data" in o:
                out.append(str(o["data"].get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_with_its_data(mirror, chapter):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "nbs" / f"{chapter}.ipynb", as_version=4)
    t0 = time.perf_counter()
    where = {"metadata": {"path": str(ROOT / "nbs")}}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources=where).execute()
    seconds = time.perf_counter() - t0
    print(f"{chapter}: Run All in {seconds:.0f} s")
    text = _outputs(nb)
    skipped = [l for l in text.splitlines() if SKIP.search(l)]
    assert not skipped, f"{chapter} skipped a demonstration: {skipped[:3]}"
    assert (mirror / "cache").is_dir()  # the data came into the empty cache
