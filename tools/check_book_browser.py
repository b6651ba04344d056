"""Open every page of the offline book in headless Chromium and check what a reader
would see.

Usage: python tools/check_book_browser.py [--html _book/_build/html] [--shots DIR]
[--build]

Fails (exit 1) when a page has
- a broken internal link (a missing file, or a `#fragment` that is no id on the target
  page),
- a missing image (an <img> that did not load),
- unrendered math (a literal `$...$`, `\\(`/`\\[` left in the text, math that MathJax
  did not typeset, a MathJax error), or anything (MathJax included) loaded from the
  network,
- a Python traceback in a cell output,
- a code cell wider than its box (a horizontal scroll bar: the book shows 88 columns),
- a signature or output that shows `__main__.` or `NoneType` (issue 25),
- a JavaScript exception.
It saves one full-page PNG screenshot per page into DIR (default _book/screenshots).

Needs Chromium (Debian: `apt-get install chromium`) and playwright (the dev extra),
which drives that Chromium: no browser download, no network."""

import argparse, functools, importlib.util, re, shutil, sys, time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
REMOTE = re.compile(r"^(https?|wss?)://")
LITERAL_MATH = re.compile(
    r"(?<![\\\w])\$\$?[^$\s][^$\n]{0,300}?\$\$?(?!\w)|\\\(|\\\)|\\\[|\\\]"
)
# Runs in the page once it has loaded: waits for MathJax, then reports what the checks
# need.
REPORT_JS = r"""async () => {
  if (window.MathJax?.startup?.promise) await MathJax.startup.promise;
  const all = s => [...document.querySelectorAll(s)];
  const skip = 'pre, code, script, style, textarea, mjx-container, .math, .highlight, .cell_output .output, .MathJax, [hidden], .d-none';
  const walker = document.createTreeWalker(document.querySelector('main, article, body'), NodeFilter.SHOW_TEXT);
  const text = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode())
    if (n.parentElement && !n.parentElement.closest(skip)) text.push(n.nodeValue);
  const outputs = all('.cell_output');
  return {
    text: text.join(' '),
    links: all('a[href]').map(a => a.href),
    images: all('img').filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src),
    untypeset: all('span.math, div.math').filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
    merror: all('mjx-merror').map(m => m.textContent.slice(0, 80)),
    tracebacks: outputs.filter(o => o.querySelector('.traceback') || /Traceback \(most recent call last\)/.test(o.innerText)).map(o => o.innerText.slice(0, 200)),
    signatures: outputs.map(o => (o.innerText.match(/.{0,40}(__main__\.|NoneType).{0,30}/) || [])[0]).filter(Boolean),
    clipped: all('.cell_input pre').filter(p => p.scrollWidth > p.clientWidth + 1).map(p => `${p.scrollWidth} > ${p.clientWidth} px: ${p.innerText.split('\n')[0].slice(0, 70)}`),
  };
}"""  # noqa: E501 (JavaScript, kept as written)


def find_chromium() -> str | None:
    for name in "chromium", "chromium-browser", "google-chrome", "chrome":
        if path := shutil.which(name):
            return path
    return None


def missing() -> str | None:
    "What the check needs and this machine lacks, or None."
    if find_chromium() is None:
        return "Chromium is not installed (Debian: apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def page_ids(path: Path) -> set[str]:
    "The ids and anchor names on an HTML page (none on other files)."
    text = path.read_text("utf-8", "replace") if path.suffix == ".html" else ""
    return set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))


def check_links(links: list[str], root: Path, ids) -> list[str]:
    """Problems with internal links (file:// URLs): missing files, files outside the
    site, missing #fragments."""
    problems = []
    for url in sorted(set(links)):
        u = urlsplit(url)
        if u.scheme != "file":
            continue
        target = Path(unquote(u.path))
        if not target.resolve().is_relative_to(root.resolve()):
            problems.append(f"link outside the book: {url}")
            continue
        target = target / "index.html" if target.is_dir() else target
        if not target.exists():
            problems.append(f"broken link: {url} (no such file)")
        elif (frag := unquote(u.fragment)) and frag not in ids(target):
            problems.append(f"broken link: {url} (no id {frag!r} on {target.name})")
    return problems


def check_page(tab, page: Path, root: Path, shots: Path | None, ids) -> list[str]:
    """Load `page` in the browser tab `tab`, run the checks, save a full-page
    screenshot; returns the list of problems."""
    tab.goto(page.resolve().as_uri())
    rep = tab.evaluate(REPORT_JS)
    problems = check_links(rep["links"], root, ids)
    problems += [f"missing image: {src[:120]}" for src in rep["images"]]
    problems += [f"math not typeset by MathJax: {t!r}" for t in rep["untypeset"]]
    problems += [f"MathJax error: {t!r}" for t in rep["merror"]]
    problems += [
        f"literal math left in the text: {m.group(0)[:80]!r}"
        for m in LITERAL_MATH.finditer(rep["text"])
    ]
    problems += [
        f"Python traceback in an output cell: {t!r}" for t in rep["tracebacks"]
    ]
    problems += [f"code wider than its box ({c!r})" for c in rep["clipped"]]
    problems += [
        f"signature with __main__ or NoneType: {t!r}" for t in rep["signatures"]
    ]
    if shots is not None:
        tab.screenshot(path=shots / f"{page.stem}.png", full_page=True)
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
    if why := missing():
        raise FileNotFoundError(why)
    html = Path(html)
    if not (html / "index.html").exists():
        raise FileNotFoundError(
            f"{html}/index.html not found: build the book first (python "
            "tools/build_book.py)"
        )
    if shots is not None:
        shots = Path(shots)
        shutil.rmtree(shots, ignore_errors=True)
        shots.mkdir(parents=True)
    from playwright.sync_api import Error, sync_playwright

    result, ids = {}, functools.cache(page_ids)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium())
        # one tab for every page: three times faster than a fresh one each
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        tab.set_default_timeout(60_000)
        found = []  # what the current page does: JavaScript exceptions, network loads
        tab.on(
            "pageerror", lambda e: found.append(f"JavaScript exception: {e.name}: {e}")
        )

        def remote(route):  # reported and refused: the book must work offline
            found.append(f"loads from the network: {route.request.url}")
            route.abort()

        tab.route(REMOTE, remote)
        for page in pages or book_pages(html):
            t0 = time.perf_counter()
            found.clear()
            try:
                result[page.name] = check_page(tab, page, html, shots, ids) + found
            except Error as e:
                result[page.name] = [f"could not check the page: {e}"]
            log(
                f"  {page.name}: {len(result[page.name])} problem(s) "
                f"({time.perf_counter() - t0:.1f} s)"
            )
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
