"""llm_tutorial.corpus.download against a real HTTP server on 127.0.0.1 (started by the tests, with Range support)."""
import hashlib, http.server, os, re, socket, threading
from pathlib import Path

import pytest

from llm_tutorial.corpus import DownloadError, download

DATA = bytes(range(256)) * 4096 + b"the end\n"       # ~1 MB, every byte value
SHA = hashlib.sha256(DATA).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    "Serves /file (DATA), /bad (DATA with one byte changed) and /cut (closes after CUT bytes on its first request)."
    state = {}        # per server: requests seen, Range headers seen
    CUT = 300_000

    def log_message(self, *args): pass

    def do_GET(self):
        st = self.server.state
        st.setdefault("ranges", []).append(self.headers.get("Range"))
        if self.path not in ("/file", "/bad", "/cut"):
            self.send_error(404); return
        body = DATA if self.path != "/bad" else DATA[:1000] + b"X" + DATA[1001:]
        start = 0
        if (m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")):
            start = int(m.group(1))
            if start >= len(body):
                self.send_response(416); self.send_header("Content-Range", f"bytes */{len(body)}"); self.end_headers(); return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else: self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        first = st.get(self.path, 0) == 0
        st[self.path] = st.get(self.path, 0) + 1
        if self.path == "/cut" and first:             # send part of the file, then drop the connection
            self.wfile.write(body[start:self.CUT]); self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.state = {}
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", srv.state
    srv.shutdown(); srv.server_close(); t.join(timeout=5)


def files(d): return sorted(p.name for p in Path(d).iterdir())


def test_full_download(server, tmp_path):
    url, state = server
    dest = tmp_path / "sub" / "data.bin"
    got = download(url + "/file", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False)
    assert got == dest and dest.read_bytes() == DATA
    assert files(dest.parent) == ["data.bin"]                   # no .part left
    assert state["ranges"] == [None]
    # a second call finds the file and does not touch the network
    download(url + "/file", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False)
    assert state["/file"] == 1


def test_size_from_content_length(server, tmp_path):
    url, _ = server
    dest = tmp_path / "data.bin"
    download(url + "/file", dest, timeout=5, progress=False)   # nothing known in advance: Content-Length checks it
    assert dest.read_bytes() == DATA


def test_cut_connection_resumes(server, tmp_path):
    url, state = server
    dest = tmp_path / "data.bin"
    download(url + "/cut", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False)
    assert dest.read_bytes() == DATA
    assert state["/cut"] == 2                                    # one cut request, one resumed request
    assert state["ranges"][0] is None and state["ranges"][1] == f"bytes={Handler.CUT}-"
    assert files(tmp_path) == ["data.bin"]


def test_resume_from_existing_part(server, tmp_path):
    url, state = server
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA[:12345])      # left by an earlier, interrupted run
    download(url + "/file", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False)
    assert dest.read_bytes() == DATA and state["ranges"] == ["bytes=12345-"]


def test_corrupted_file(server, tmp_path):
    url, _ = server
    dest = tmp_path / "data.bin"
    with pytest.raises(ValueError, match="sha256") as e:
        download(url + "/bad", dest, sha256=SHA, size=len(DATA), timeout=5, progress=False)
    assert str(dest) in str(e.value)
    assert files(tmp_path) == []                                  # nothing under the final name, no .part either


def test_wrong_size(server, tmp_path):
    url, _ = server
    with pytest.raises(ValueError, match="size"):
        download(url + "/file", tmp_path / "x", size=len(DATA) - 1, timeout=5, progress=False)
    assert files(tmp_path) == []


def test_not_found(server, tmp_path):
    url, state = server
    with pytest.raises(DownloadError, match="HTTP 404") as e:
        download(url + "/missing", tmp_path / "x", tries=3, timeout=5, progress=False)
    assert "by hand" in str(e.value) and str(tmp_path / "x") in str(e.value)
    assert len(state["ranges"]) == 1                              # a 404 is not retried
    assert files(tmp_path) == []


def test_no_server(tmp_path):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()   # a port nobody listens on
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="by hand") as e:
        download(f"http://127.0.0.1:{port}/file", dest, tries=2, timeout=2, progress=False)
    assert str(dest) in str(e.value) and "refused" in str(e.value).lower()
    assert files(tmp_path) == []
