"""Open every page of the offline book in headless Chromium and check what a reader
would see.

Usage: python tools/check_book_browser.py [--html _book/_build/html] [--shots DIR]
[--build]

Fails (exit 1) when a page has
- a broken internal link (a missing file, or a `#fragment` that is no id on the target
  page),
- a missing image (an <img> that did not load),
- unrendered math (a literal `$...$`, `\\(`/`\\[` left in the text, math that MathJax
  did not typeset, a MathJax error), or MathJax / any script, style or image loaded from
  the network,
- a Python traceback in a cell output,
- a code cell wider than its box (a horizontal scroll bar: the book shows 88 columns),
- a signature or output that shows `__main__.` or `NoneType` (issue 25),
- a JavaScript exception.
It saves one full-page PNG screenshot per page into DIR (default _book/screenshots).

Needs Chromium (Debian: `apt-get install chromium`); talks to it over
`--remote-debugging-pipe` (the DevTools protocol on two pipes), so only the standard
library is used."""

import argparse, base64, json, os, re, select, shutil, subprocess, sys, tempfile, time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-extensions",
]
WIDTH = 1280


def find_chromium() -> str | None:
    for name in (
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "chrome",
    ):
        if p := shutil.which(name):
            return p
    return None


class Chromium:
    """A headless Chromium driven over the DevTools protocol on a pipe (fd 3: commands
    in, fd 4: answers out)."""

    def __init__(self, exe: str):
        self.profile = tempfile.mkdtemp(prefix="llm_tutorial_chromium_")
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def child_fds():
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe"],
            preexec_fn=child_fds,
            pass_fds=(3, 4),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._buf, self._id, self.events = b"", 0, []

    def _recv(self, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while b"\0" not in self._buf:
            ready, _, _ = select.select(
                [self._res_r], [], [], max(0.0, end - time.monotonic())
            )
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium exited")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 60,
    ) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            r = self._recv(timeout)
            if r.get("id") == self._id:
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error'].get('message')}")
                return r.get("result", {})
            self.events.append(r)

    def wait_event(self, name: str, session: str, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == name and e.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._recv(max(0.0, end - time.monotonic())))

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


# Runs in the page once it has loaded: waits for MathJax, then reports what the checks
# need.
PAGE_REPORT_JS = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await new Promise(r => setTimeout(r, 50));
  const skip = 'pre, code, script, style, textarea, mjx-container, .math, .highlight, .cell_output .output, .MathJax';
  const walker = document.createTreeWalker(document.querySelector('main, article, body') || document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || el.closest('[hidden], .d-none')) continue;
    texts.push(n.nodeValue);
  }
  const maths = [...document.querySelectorAll('span.math, div.math')];
  const tracebacks = [...document.querySelectorAll('.cell_output')]
     .filter(o => o.querySelector('.traceback') || /Traceback \(most recent call last\)/.test(o.innerText))
     .map(o => o.innerText.slice(0, 300));
  const remote = [...document.querySelectorAll('script[src], link[rel=stylesheet][href], img[src]')]
     .map(e => e.src || e.href).filter(u => /^https?:/.test(u));
  return JSON.stringify({
    text: texts.join(' '),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    images: [...document.querySelectorAll('img')].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
    mathjax: [...document.querySelectorAll('script[src]')].map(s => s.src).filter(u => /mathjax/i.test(u)),
    math: maths.length, untypeset: maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
    merror: [...document.querySelectorAll('mjx-merror')].map(m => m.textContent.slice(0, 80)),
    tracebacks, remote,
    clipped: [...document.querySelectorAll('.cell_input pre')]
     .filter(p => p.scrollWidth > p.clientWidth + 1)
     .map(p => ({first: p.innerText.split('\n')[0].slice(0, 70),
                 sw: p.scrollWidth, cw: p.clientWidth})),
    signatures: [...document.querySelectorAll('.cell_output')]
     .map(o => o.innerText).filter(t => /__main__\.|NoneType/.test(t))
     .map(t => (t.match(/.{0,40}(__main__\.|NoneType).{0,30}/) || [t.slice(0, 70)])[0]),
    height: Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),
  });
})()
"""  # noqa: E501 (JavaScript, kept as written)

LITERAL_MATH = re.compile(
    r"(?<![\\\w])\$\$?[^$\s][^$\n]{0,300}?\$\$?(?!\w)|\\\(|\\\)|\\\[|\\\]"
)


def _ids(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        text = (
            path.read_text(encoding="utf-8", errors="replace")
            if path.suffix == ".html"
            else ""
        )
        cache[path] = set(re.findall(r"""\bid=["']([^"']+)["']""", text)) | set(
            re.findall(r"""\bname=["']([^"']+)["']""", text)
        )
    return cache[path]


def check_links(page: Path, links: list[str], root: Path, id_cache: dict) -> list[str]:
    """Problems with internal links (file:// URLs): missing files, files outside the
    site, missing #fragments."""
    problems = []
    for url in sorted(set(links)):
        u = urlsplit(url)
        if u.scheme != "file":
            continue
        target = Path(unquote(u.path))
        try:
            target.resolve().relative_to(root.resolve())
        except ValueError:
            problems.append(f"link outside the book: {url}")
            continue
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            problems.append(f"broken link: {url} (no such file)")
            continue
        frag = unquote(u.fragment)
        if frag and frag not in _ids(target, id_cache):
            problems.append(f"broken link: {url} (no id {frag!r} on {target.name})")
    return problems


def check_page(
    browser: Chromium,
    page: Path,
    root: Path,
    shots: Path | None,
    id_cache: dict,
    timeout: float = 60,
) -> list[str]:
    """Load `page`, run the checks, save a full-page screenshot; returns the list of
    problems."""
    tid = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    sid = browser.send("Target.attachToTarget", {"targetId": tid, "flatten": True})[
        "sessionId"
    ]
    problems = []
    try:
        for domain in ("Page", "Runtime"):
            browser.send(f"{domain}.enable", session=sid)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            session=sid,
        )
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=sid)
        browser.wait_event("Page.loadEventFired", sid, timeout)
        r = browser.send(
            "Runtime.evaluate",
            {"expression": PAGE_REPORT_JS, "awaitPromise": True, "returnByValue": True},
            session=sid,
            timeout=timeout,
        )
        if "exceptionDetails" in r:
            raise RuntimeError(
                f"page script failed: {r['exceptionDetails'].get('text')}"
            )
        rep = json.loads(r["result"]["value"])
        problems += check_links(page, rep["links"], root, id_cache)
        problems += [
            f"missing image: {i['src'][:120]}" for i in rep["images"] if not i["ok"]
        ]
        problems += [f"math not typeset by MathJax: {t!r}" for t in rep["untypeset"]]
        problems += [
            f"code wider than its box ({c['sw']} > {c['cw']} px): {c['first']!r}"
            for c in rep["clipped"]
        ]
        problems += [
            f"signature with __main__ or NoneType: {t!r}" for t in rep["signatures"]
        ]
        problems += [f"MathJax error: {t!r}" for t in rep["merror"]]
        if rep["math"] and not rep["mathjax"]:
            problems.append("page has math but loads no MathJax")
        problems += [
            f"MathJax from the network: {u}"
            for u in rep["mathjax"]
            if not u.startswith("file:")
        ]
        problems += [
            f"loads a remote resource: {u}"
            for u in rep["remote"]
            if "mathjax" not in u.lower()
        ]
        problems += [
            f"literal math left in the text: {m.group(0)[:80]!r}"
            for m in LITERAL_MATH.finditer(rep["text"])
        ]
        problems += [
            f"Python traceback in an output cell: {t[:200]!r}"
            for t in rep["tracebacks"]
        ]
        for e in browser.events:
            if (
                e.get("sessionId") == sid
                and e.get("method") == "Runtime.exceptionThrown"
            ):
                d = e["params"]["exceptionDetails"]
                what = (d.get("exception") or {}).get("description") or d.get("text")
                problems.append(f"JavaScript exception: {what}"[:300])
        if shots is not None:
            h = min(max(int(rep["height"]), 600), 30000)
            browser.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": h, "deviceScaleFactor": 1, "mobile": False},
                session=sid,
            )
            browser.send(
                "Runtime.evaluate",
                {
                    "expression": "new Promise(r => requestAnimationFrame("
                    "() => setTimeout(r, 100)))",
                    "awaitPromise": True,
                },
                session=sid,
            )
            shot = browser.send(
                "Page.captureScreenshot",
                {"format": "png"},
                session=sid,
                timeout=timeout,
            )
            (shots / f"{page.stem}.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.events = [e for e in browser.events if e.get("sessionId") != sid]
        browser.send("Target.closeTarget", {"targetId": tid})
    return problems


def book_pages(html: Path) -> list[Path]:
    "The book's content pages (not Sphinx's search and index pages)."
    return sorted(
        p
        for p in html.glob("*.html")
        if p.name not in ("search.html", "genindex.html", "py-modindex.html")
    )


def check_book(
    html: Path, shots: Path | None, pages: list[Path] | None = None, log=print
) -> dict[str, list[str]]:
    """Check every page of the built site in `html`; returns {page name: problems}
    (empty lists when fine)."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError(
            "Chromium not found: install it (Debian: apt-get install chromium)"
        )
    html = Path(html)
    if not (html / "index.html").exists():
        raise FileNotFoundError(
            f"{html}/index.html not found: build the book first (python "
            "tools/build_book.py)"
        )
    if shots is not None:
        shots = Path(shots)
        if shots.exists():
            shutil.rmtree(shots)
        shots.mkdir(parents=True)
    browser, id_cache, result = Chromium(exe), {}, {}
    try:
        browser.send("Target.setDiscoverTargets", {"discover": False})
        for page in pages or book_pages(html):
            t0 = time.perf_counter()
            try:
                result[page.name] = check_page(browser, page, html, shots, id_cache)
            except (TimeoutError, RuntimeError) as e:
                result[page.name] = [f"could not check the page: {e}"]
            log(
                f"  {page.name}: {len(result[page.name])} problem(s) "
                f"({time.perf_counter() - t0:.1f} s)"
            )
    finally:
        browser.close()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--html",
        default=str(ROOT / "_book" / "_build" / "html"),
        help="the built site (default _book/_build/html)",
    )
    ap.add_argument(
        "--shots",
        default=str(ROOT / "_book" / "screenshots"),
        help="folder for one PNG per page ('' for none)",
    )
    ap.add_argument(
        "--build",
        action="store_true",
        help="build the book first (tools/build_book.py)",
    )
    a = ap.parse_args(argv)
    if a.build:
        sys.path.insert(0, str(Path(__file__).parent))
        import build_book

        build_book.build()
    try:
        result = check_book(Path(a.html), Path(a.shots) if a.shots else None)
    except FileNotFoundError as e:
        print(f"check_book_browser: {e}", file=sys.stderr)
        return 2
    bad = {p: ps for p, ps in result.items() if ps}
    for p, ps in bad.items():
        print(f"{p}:")
        [print(f"  - {x}") for x in ps]
    print(
        f"{len(result)} pages checked, {len(bad)} with problems"
        + (f"; screenshots in {a.shots}" if a.shots else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
