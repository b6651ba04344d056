"""Tiny Shakespeare and GPT-2's vocabulary ship with the package (issue 37).

`shakespeare_path` and `gpt2_files` (what chapters 00-03, 07 and 08 call) need neither a
network nor the shared folder; every use checks the files' SHA-256, and a damaged copy
is an error that says what to do. Datasets that do not ship (TinyStories) still download
once into the data cache.
"""

import functools, hashlib, http.server, shutil, threading

import pytest

import llm_tutorial.datasets as datasets
from llm_tutorial.datasets import ASSETS, DATASETS, GPT2_CACHE_NAMES, GPT2_SHA256
from llm_tutorial.datasets import GPT2_SHIPPED, corpus_path, gpt2_files, load_corpus
from llm_tutorial.datasets import shakespeare_path
from llm_tutorial.files import DownloadError, file_sha256

TEXT = b"Once upon a time, there was a little girl named Mia.<|endoftext|>\n" * 500


@pytest.fixture
def offline(tmp_path, monkeypatch):
    "No shared folder, empty caches, every download sent to a closed port."
    monkeypatch.setenv("LLM_TUTORIAL_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setenv("LLM_TUTORIAL_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("LLM_TUTORIAL_MIRROR", "http://127.0.0.1:9")
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    return tmp_path


def test_shakespeare_is_the_package_copy(offline):
    path = shakespeare_path()
    assert path == ASSETS / "tinyshakespeare.txt"
    assert file_sha256(path) == DATASETS["tinyshakespeare"]["sha256"]
    text = path.read_text(encoding="utf-8")
    assert load_corpus("tinyshakespeare") == text[: len(text) * 9 // 10]
    assert not (offline / "cache").exists()  # nothing downloaded, nothing written


def test_gpt2_files_let_tiktoken_load_gpt2_offline(offline, monkeypatch):
    import tiktoken, tiktoken.load, tiktoken.registry

    def no_network(url):
        raise AssertionError(f"tiktoken tried to download {url}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # GPT-2 not loaded yet
    files = gpt2_files()
    cache = offline / "cache" / "tiktoken_cache"
    assert files == (cache / GPT2_CACHE_NAMES[0], cache / GPT2_CACHE_NAMES[1])
    assert [file_sha256(f) for f in files] == list(GPT2_SHA256)
    assert tiktoken.get_encoding("gpt2").encode("Hello world") == [15496, 995]


def test_gpt2_files_replace_a_changed_cache_file(offline):
    vocab_bpe = gpt2_files()[1]
    vocab_bpe.write_text("#version: 0.2\n", encoding="utf-8")
    assert file_sha256(gpt2_files()[1]) == GPT2_SHA256[1]


def test_damaged_package_copy_says_what_to_do(offline, monkeypatch):
    assets = offline / "assets"
    shutil.copytree(ASSETS, assets)
    (assets / "tinyshakespeare.txt").write_text("Not Shakespeare.", encoding="utf-8")
    (assets / GPT2_SHIPPED[0]).unlink()
    monkeypatch.setattr(datasets, "ASSETS", assets)
    damaged = r"tinyshakespeare.txt: size 16 bytes, expected 1,115,394; reinstall"
    with pytest.raises(ValueError, match=damaged):
        shakespeare_path()
    with pytest.raises(ValueError, match=r"encoder.json: no such file; reinstall"):
        gpt2_files()


@pytest.fixture
def site(tmp_path, monkeypatch):
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
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


def test_a_dataset_not_shipped_downloads_once(site, offline, monkeypatch):
    root, base = site
    (root / "valid.txt").write_bytes(TEXT)
    sha = hashlib.sha256(TEXT).hexdigest()
    spec = dict(url=f"{base}/valid.txt", size=len(TEXT), sha256=sha)
    monkeypatch.setitem(DATASETS, "tinystories", {"train": spec, "validation": spec})
    monkeypatch.delenv("LLM_TUTORIAL_MIRROR")
    path = corpus_path("tinystories", "validation")
    assert path == offline / "cache" / "valid.txt"
    assert path.read_bytes() == TEXT
    (root / "valid.txt").unlink()  # the second call needs no network
    assert corpus_path("tinystories", "validation") == path


def test_tinystories_offline_is_a_download_error(offline):
    "What chapter 02's TinyStories cell catches to say, in one line, what to do."
    with pytest.raises(DownloadError, match="by hand"):
        corpus_path("tinystories", "validation")
