"""The chapters' data without the shared test folder (issue 24).

Tiny Shakespeare and GPT-2's vocabulary come from a local HTTP server standing in for
the network, through `shakespeare_path` and `gpt2_files` (what chapters 00-03 call).
"""

import functools, hashlib, http.server, shutil, threading

import pytest

import llm_tutorial.corpus as corpus
from llm_tutorial.corpus import GPT2_CACHE_NAMES, gpt2_files, load_corpus
from llm_tutorial.corpus import shakespeare_path
from llm_tutorial.files import shared_data_dir

REAL_SHARED = shared_data_dir()  # read before a test hides it: GPT-2's files to serve
TEXT = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 500
OPENAI = "https://openaipublic.blob.core.windows.net"


@pytest.fixture
def site(tmp_path):
    "A static file server on 127.0.0.1 over `site/`; yields (folder, base URL)."
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root)
    )
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(
        target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


@pytest.fixture
def no_shared(tmp_path, monkeypatch):
    "Shared folder hidden, empty data cache, no tiktoken cache, no proxy for 127.0.0.1."
    monkeypatch.setenv("LLM_TUTORIAL_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setenv("LLM_TUTORIAL_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert shared_data_dir() is None
    return tmp_path


def _serve_shakespeare(monkeypatch, url: str, body: bytes = TEXT):
    "Point the Tiny Shakespeare entry at `url`, pinned to `body`'s size and checksum."
    sha = hashlib.sha256(body).hexdigest()
    spec = dict(file="tinyshakespeare.txt", url=url, size=len(body), sha256=sha)
    monkeypatch.setitem(corpus.DATASETS, "tinyshakespeare", spec)


def test_shakespeare_downloads_into_the_cache(site, no_shared, monkeypatch):
    root, base = site
    (root / "input.txt").write_bytes(TEXT)
    _serve_shakespeare(monkeypatch, f"{base}/input.txt")
    path = shakespeare_path()
    assert path == no_shared / "cache" / "tinyshakespeare.txt"
    assert path.read_bytes() == TEXT
    cut = len(TEXT) * 9 // 10
    assert load_corpus("tinyshakespeare") == TEXT.decode()[:cut]
    (root / "input.txt").unlink()  # the second call needs no network
    assert shakespeare_path() == path


def test_shakespeare_offline_says_what_to_do(no_shared, monkeypatch, capsys):
    _serve_shakespeare(monkeypatch, "http://127.0.0.1:9/input.txt")  # nothing on 9
    assert shakespeare_path() is None
    out = capsys.readouterr().out
    assert "Tiny Shakespeare is not available" in out
    assert "LLM_TUTORIAL_SHARED" in out


def test_shakespeare_shared_copy_only_when_it_checks(site, no_shared, monkeypatch):
    root, base = site
    (root / "input.txt").write_bytes(TEXT)
    _serve_shakespeare(monkeypatch, f"{base}/input.txt")
    shared = no_shared / "shared"
    shared.mkdir()
    copy = shared / "tinyshakespeare.txt"
    copy.write_bytes(TEXT)
    monkeypatch.setenv("LLM_TUTORIAL_SHARED", str(shared))
    assert shakespeare_path() == copy  # offline copy, checksum matches
    copy.write_bytes(TEXT[:-1] + b"?")
    cached = no_shared / "cache" / "tinyshakespeare.txt"
    assert shakespeare_path() == cached  # a bad copy: downloaded instead


def test_gpt2_files_through_tiktoken_loader(site, no_shared, monkeypatch):
    "tiktoken's own loader fetches GPT-2's files (hash-checked) into the data cache."
    real = REAL_SHARED / "tiktoken_cache" if REAL_SHARED else None
    if real is None or not real.is_dir():
        pytest.skip("needs GPT-2's files in ../shared/data/tiktoken_cache to serve")
    import tiktoken.load, tiktoken.registry

    root, base = site
    served = root / "gpt-2" / "encodings" / "main"
    served.mkdir(parents=True)
    for name, cached in zip(("encoder.json", "vocab.bpe"), GPT2_CACHE_NAMES):
        shutil.copy(real / cached, served / name)
    original = tiktoken.load.read_file
    local = lambda p: original(p.replace(OPENAI, base))  # the server stands in
    monkeypatch.setattr(tiktoken.load, "read_file", local)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # no encoding loaded yet
    files = gpt2_files()
    assert files is not None
    assert files[0].parent == no_shared / "cache" / "tiktoken_cache"
    for got, cached in zip(files, GPT2_CACHE_NAMES):
        assert got.read_bytes() == (real / cached).read_bytes()
