"""llm_tutorial.corpus.download against a real HTTP server on 127.0.0.1 (started by the
tests, with Range support)."""

import hashlib, http.server, os, re, socket, threading
from pathlib import Path

import pytest

from llm_tutorial.files import DownloadError, download

DATA = bytes(range(256)) * 4096 + b"the end\n"  # ~1 MB, every byte value
SHA = hashlib.sha256(DATA).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves /file (DATA), /bad (DATA with one byte changed) and /cut (closes after CUT
    bytes on its first request). Query options change the server's behaviour (the
    counts are per path, query included): cut=N closes the first response after byte
    N; nolength=1 sends no Content-Length (the end of the body is the end of the
    connection); range=zero answers a range request with a 206 that starts at byte 0,
    range=ahead with one that starts 100 bytes after the byte asked for; etag=1 sends
    an ETag and honours If-Range, etag=change sends a new ETag on every request (the
    file "changed" between requests)."""

    CUT = 300_000

    def log_message(self, *args):
        pass

    def _query(self):
        path, _, q = self.path.partition("?")
        return path, dict(kv.split("=") for kv in q.split("&") if kv)

    def _range_start(self, q, st, n):
        "The first byte to send, or None for the whole file (status 200)."
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m is None:
            return None
        if q.get("etag") and self.headers.get("If-Range") != self._etag(q, st):
            return None
        return int(m.group(1))

    def _etag(self, q, st):
        return f'"v{st.get(self.path, 0)}"' if q.get("etag") == "change" else '"v1"'

    def do_GET(self):
        st = self.server.state
        st.setdefault("ranges", []).append(self.headers.get("Range"))
        st.setdefault("if_range", []).append(self.headers.get("If-Range"))
        st.setdefault("encoding", []).append(self.headers.get("Accept-Encoding"))
        path, q = self._query()
        if path not in ("/file", "/bad", "/cut"):
            self.send_error(404)
            return
        body = DATA if path != "/bad" else DATA[:1000] + b"X" + DATA[1001:]
        start = self._range_start(q, st, len(body))
        if start is not None and start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.end_headers()
            return
        if start is None:
            start = 0
            self.send_response(200)
        else:
            start = {"zero": 0, "ahead": start + 100}.get(q.get("range"), start)
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"
            )
        if not q.get("nolength"):
            self.send_header("Content-Length", str(len(body) - start))
        if q.get("etag"):
            self.send_header("ETag", self._etag(q, st))
        self.end_headers()
        first = st.get(self.path, 0) == 0
        st[self.path] = st.get(self.path, 0) + 1
        cut = self.CUT if path == "/cut" else int(q.get("cut", 0))
        if cut and first:  # send part of the file, then drop the connection
            self.wfile.write(body[start:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.state = {}
    t = threading.Thread(
        target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", srv.state
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


def files(d):
    return sorted(p.name for p in Path(d).iterdir())


def test_full_download(server, tmp_path):
    url, state = server
    dest = tmp_path / "sub" / "data.bin"
    got = download(
        url + "/file", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False
    )
    assert got == dest and dest.read_bytes() == DATA
    assert files(dest.parent) == ["data.bin"]  # no .part left
    assert state["ranges"] == [None]
    assert state["encoding"] == ["identity"]  # the bytes the checksum covers, no gzip
    # a second call finds the file and does not touch the network
    download(url + "/file", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False)
    assert state["/file"] == 1


def test_size_from_content_length(server, tmp_path):
    url, _ = server
    dest = tmp_path / "data.bin"
    # nothing known in advance: Content-Length checks it
    download(url + "/file", dest, timeout=5, progress=False)
    assert dest.read_bytes() == DATA


def test_cut_connection_resumes(server, tmp_path):
    url, state = server
    dest = tmp_path / "data.bin"
    download(url + "/cut", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False)
    assert dest.read_bytes() == DATA
    assert state["/cut"] == 2  # one cut request, one resumed request
    assert state["ranges"][0] is None and state["ranges"][1] == f"bytes={Handler.CUT}-"
    assert files(tmp_path) == ["data.bin"]


def test_resume_from_existing_part(server, tmp_path):
    url, state = server
    dest = tmp_path / "data.bin"
    # left by an earlier, interrupted run
    (tmp_path / "data.bin.part").write_bytes(DATA[:12345])
    download(url + "/file", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False)
    assert dest.read_bytes() == DATA and state["ranges"] == ["bytes=12345-"]


def test_corrupted_file(server, tmp_path):
    url, _ = server
    dest = tmp_path / "data.bin"
    with pytest.raises(ValueError, match="sha256") as e:
        download(
            url + "/bad", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False
        )
    assert str(dest) in str(e.value)
    assert files(tmp_path) == []  # nothing under the final name, no .part either


def test_wrong_size(server, tmp_path):
    url, _ = server
    with pytest.raises(ValueError, match="size"):
        download(
            url + "/file", tmp_path / "x", size=len(DATA) - 1, timeout=5, progress=False
        )
    assert files(tmp_path) == []


@pytest.mark.parametrize("query", ["", "?nolength=1"])
def test_wrong_size_is_reported_as_such(server, tmp_path, query):
    """A pinned size the server contradicts: 'expected N bytes, the server sends M'
    (without Content-Length: a body past it fails the size check), not a cut."""
    url, state = server
    for size in (len(DATA) - 1, len(DATA) + 1000):
        # without Content-Length: only too long shows
        if query and size > len(DATA):
            continue
        with pytest.raises(ValueError) as e:
            download(
                url + "/file" + query,
                tmp_path / "x",
                size=size,
                tries=3,
                timeout=5,
                progress=False,
            )
        msg = str(e.value)
        told = (
            f"size {len(DATA):,} bytes, expected {size:,}"
            if query
            else f"expected {size:,} bytes, the server sends {len(DATA):,}"
        )
        assert told in msg, msg
        assert "connection closed" not in msg and "nothing was saved" in msg
        assert files(tmp_path) == []
    # a wrong size is not retried
    assert len(state["ranges"]) == (1 if query else 2)


def test_not_found(server, tmp_path):
    url, state = server
    with pytest.raises(DownloadError, match="HTTP 404") as e:
        download(url + "/missing", tmp_path / "x", tries=3, timeout=5, progress=False)
    assert "by hand" in str(e.value) and str(tmp_path / "x") in str(e.value)
    assert len(state["ranges"]) == 1  # a 404 is not retried
    assert files(tmp_path) == []


def test_no_server(tmp_path):
    # a port nobody listens on
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="by hand") as e:
        download(
            f"http://127.0.0.1:{port}/file", dest, tries=2, timeout=2, progress=False
        )
    assert str(dest) in str(e.value) and "refused" in str(e.value).lower()
    assert files(tmp_path) == []


def test_bad_content_range_is_not_appended(server, tmp_path):
    """The connection breaks; the server answers the range request with the file from
    byte 0 (a 206)."""
    url, state = server
    dest = tmp_path / "data.bin"
    # nothing pinned
    download(url + "/file?cut=300000&range=zero", dest, timeout=5, progress=False)
    assert state["ranges"] == [None, "bytes=300000-"]
    assert dest.read_bytes() == DATA  # not DATA[:300000] + DATA


def test_content_range_ahead_restarts(server, tmp_path):
    """A 206 that starts after the bytes we hold cannot continue them: start again
    without Range."""
    url, state = server
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA[:12345])
    download(
        url + "/file?range=ahead",
        dest,
        sha256=SHA,
        size=len(DATA),
        timeout=5,
        progress=False,
    )
    assert state["ranges"] == ["bytes=12345-", None]
    assert dest.read_bytes() == DATA and files(tmp_path) == ["data.bin"]


def test_server_ignoring_range_restarts(server, tmp_path):
    """A 200 to a range request is the whole file: .part starts again, nothing is
    appended."""
    url, state = server
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA[:12345])
    download(
        url + "/file?etag=change",
        dest,
        sha256=SHA,
        size=len(DATA),
        timeout=5,
        progress=False,
    )
    assert state["ranges"] == ["bytes=12345-"]  # answered with 200 (If-Range fails)
    assert dest.read_bytes() == DATA


def test_if_range_on_resume(server, tmp_path):
    """Resumes within a call carry the first answer's ETag; a file changed on the server
    comes back whole."""
    url, state = server
    download(url + "/file?cut=300000&etag=1", tmp_path / "a", timeout=5, progress=False)
    assert state["if_range"] == [None, '"v1"'] and (tmp_path / "a").read_bytes() == DATA
    state["ranges"].clear()
    download(
        url + "/file?cut=300000&etag=change", tmp_path / "b", timeout=5, progress=False
    )
    assert state["ranges"] == [None, "bytes=300000-"]  # the second answer was a 200
    assert (tmp_path / "b").read_bytes() == DATA


@pytest.mark.parametrize("pinned", [True, False])
def test_stale_garbage_part(server, tmp_path, pinned):
    "A .part of garbage from an earlier run: never kept as the start of the file."
    url, state = server
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"garbage!" * 2000)
    kw = dict(sha256=SHA, size=len(DATA)) if pinned else {}
    download(url + "/file", dest, timeout=5, progress=False, **kw)
    assert dest.read_bytes() == DATA and files(tmp_path) == ["data.bin"]
    # with a checksum the old bytes are tried (and fail it), without one they are not
    # even tried
    assert state["ranges"] == (["bytes=16000-", None] if pinned else [None])


def test_complete_part_and_416(server, tmp_path):
    """A .part that already holds the whole file: the server's 416 (bytes */N) confirms
    it."""
    url, state = server
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA)
    download(url + "/file", dest, sha256=SHA, timeout=5, progress=False)
    assert state["ranges"] == [f"bytes={len(DATA)}-"] and dest.read_bytes() == DATA


def test_short_body_with_content_length(server, tmp_path):
    """Fewer bytes than Content-Length said: an error (here with one try), never a
    complete file."""
    url, state = server
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match=r"IncompleteRead\(300000 bytes read"):
        download(url + "/file?cut=300000", dest, tries=1, timeout=5, progress=False)
    assert files(tmp_path) == ["data.bin.part"]  # kept, to resume
    download(url + "/file?cut=300000", dest, sha256=SHA, timeout=5, progress=False)
    assert dest.read_bytes() == DATA and state["ranges"] == [None, "bytes=300000-"]


def test_short_body_without_content_length(server, tmp_path):
    """No Content-Length and a cut connection: refused without a pinned size, resumed
    with one."""
    url, state = server
    dest = tmp_path / "data.bin"
    with pytest.raises(ValueError, match="Content-Length") as e:
        download(url + "/file?cut=300000&nolength=1", dest, timeout=5, progress=False)
    assert "size=" in str(e.value) and files(tmp_path) == []
    again = url + "/file?cut=300000&nolength=1&again=1"  # a new path: cut again
    download(again, dest, size=len(DATA), timeout=5, progress=False)
    assert dest.read_bytes() == DATA
    assert state["ranges"][-2:] == [None, "bytes=300000-"]


def test_directory_dest_fails_before_any_request(server, tmp_path):
    url, state = server
    with pytest.raises(IsADirectoryError, match="is a folder"):
        download(url + "/file", tmp_path, timeout=5, progress=False)
    (tmp_path / "f").write_text("a file")
    with pytest.raises(OSError, match="download folder .* is a file, not a folder"):
        download(url + "/file", tmp_path / "f" / "data.bin", timeout=5, progress=False)
    assert state.get("ranges", []) == [] and files(tmp_path) == ["f"]


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs file permissions (not root)"
)
def test_unwritable_folder_fails_before_any_request(server, tmp_path):
    url, state = server
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(PermissionError, match="cannot write in the download folder"):
        download(url + "/file", ro / "data.bin", timeout=5, progress=False)
    assert state.get("ranges", []) == []
