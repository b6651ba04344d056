"""The offline book: tools/build_book.py builds every sidebar page with Jupyter Book 1
(warnings are errors), MathJax is served from the site, no output cell holds a
traceback, chapters are committed executed and the performance appendix shows the
latest benchmark results. Where Chromium and playwright are installed
(LLM_TUTORIAL_BROWSER=1: required; 0: skipped), tools/check_book_browser.py also opens
every page in headless Chromium (links, images, math, tracebacks) and saves a
screenshot per page (into $LLM_TUTORIAL_SCREENSHOTS if set)."""

import html.parser, json, os, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_book, check_book_browser  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Build the book (warnings as errors) into a temporary folder; the HTML site's
    folder."""
    out = tmp_path_factory.mktemp("book")
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_book.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, (
        "the book does not build (python "
        f"tools/build_book.py):\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
    )
    return out / "_build" / "html"


def sidebar_pages() -> list[str]:
    return [Path(f).with_suffix(".html").name for _, f in build_book.sidebar_entries()]


def test_one_page_per_sidebar_entry(site):
    pages = sidebar_pages()
    assert len(pages) == len(set(pages)) >= 2
    missing = [p for p in pages if not (site / p).exists()]
    assert not missing, f"sidebar entries without a page: {missing}"
    extra = {p.name for p in check_book_browser.book_pages(site)} - set(pages)
    assert not extra, f"pages that are not in nbs/sidebar.yml: {extra}"


class _Nav(html.parser.HTMLParser):
    "Links of the book's left navigation, in document order."

    def __init__(self):
        super().__init__()
        self.depth, self.links = 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.depth:
            self.depth += tag not in ("br", "img", "input", "meta", "link", "hr")
        elif tag == "nav" and "bd-docs-nav" in (a.get("class") or ""):
            self.depth = 1
        if self.depth and tag == "a" and a.get("href"):
            self.links.append(a["href"].split("#")[0])

    def handle_endtag(self, tag):
        if self.depth and tag not in ("br", "img", "input", "meta", "link", "hr"):
            self.depth -= 1


def test_navigation_follows_the_sidebar(site):
    nav = _Nav()
    nav.feed((site / "index.html").read_text(encoding="utf-8"))
    order = [l for l in nav.links if l.endswith(".html")]
    assert order == sidebar_pages()[1:], (
        "the book's navigation lists the chapters in nbs/sidebar.yml's order"
    )


def test_titles_from_front_matter(site):
    for _, f in build_book.sidebar_entries():
        nb = json.loads((ROOT / "nbs" / f).read_text(encoding="utf-8"))
        first = "".join(nb["cells"][0]["source"])
        title = re.match(r"#\s+(.+)", first).group(1).strip()
        page = (site / Path(f).with_suffix(".html").name).read_text(encoding="utf-8")
        h1 = re.search(r"<h1>([^<]*(?:<(?!/h1)[^<]*)*?)<a class=\"headerlink\"", page)
        assert h1, f"{f}: no <h1> title on the page"
        assert re.sub(r"<[^>]+>", "", h1.group(1)).strip() == re.sub(
            r"[`*]", "", title
        ), f"{f}: title differs from the notebook's"


def test_mathjax_served_locally(site):
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists(), (
        "sphinx-mathjax-offline did not copy MathJax into _static/"
    )
    with_math = []
    for p in site.glob("*.html"):
        text = p.read_text(encoding="utf-8")
        srcs = re.findall(
            r"<script[^>]*\bsrc=\"([^\"]*mathjax[^\"]*)\"", text, flags=re.I
        )
        assert all(not re.match(r"(https?:)?//", s) for s in srcs), (
            f"{p.name} loads MathJax from the network: {srcs}"
        )
        if re.search(r"class=\"math notranslate", text):
            with_math.append(p.name)
            assert any(s.endswith("_static/mathjax/tex-chtml.js") for s in srcs), (
                f"{p.name} has math but no local MathJax"
            )
    assert with_math, (
        "no page has math (the performance appendix has a formula): is dollarmath "
        "enabled?"
    )


class _Outputs(html.parser.HTMLParser):
    "Text of each `cell_output` block, and whether it holds a rendered error output."

    def __init__(self):
        super().__init__()
        self.depth, self.outputs = 0, []

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if self.depth:
            self.depth += tag not in ("br", "img", "input", "hr", "meta", "link")
        elif tag == "div" and "cell_output" in cls.split():
            self.depth = 1
            self.outputs.append([False, ""])
        if self.depth and "traceback" in cls.split():
            self.outputs[-1][0] = True

    def handle_endtag(self, tag):
        if self.depth and tag not in ("br", "img", "input", "hr", "meta", "link"):
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.outputs[-1][1] += data


def test_no_traceback_in_outputs(site):
    bad = []
    for p in sorted(site.glob("*.html")):
        parser = _Outputs()
        parser.feed(p.read_text(encoding="utf-8"))
        bad += [
            f"{p.name}: {text.strip()[:200]!r}"
            for err, text in parser.outputs
            if err or "Traceback (most recent call last)" in text
        ]
    assert not bad, (
        "output cells with a Python traceback (re-run the chapter):\n" + "\n".join(bad)
    )


def test_cleanups():
    md = build_book.frontmatter_cell(
        "---\ndescription: 'One line.'\noutput-file: bytes.html\ntitle: Bytes and "
        "UTF-8\n---\n\n"
    )
    assert md == "# Bytes and UTF-8\n\n*One line.*"
    assert build_book.split_directives(
        "#| echo: false\n#| output: asis\nshow_doc(f)"
    ) == ({"echo": "false", "output": "asis"}, "show_doc(f)")
    out = build_book.clean_output(
        {
            "output_type": "execute_result",
            "execution_count": 3,
            "metadata": {},
            "data": {"text/markdown": ["---\n", "\n", "### f\n"], "text/plain": ["f"]},
        },
        ("", {}),
    )
    assert out["data"]["text/markdown"] == "### f\n" and out["execution_count"] is None
    links = ("https://h.io/b", {"bytes.html": "01_bytes.ipynb"})
    assert (
        build_book.localize_links(
            "[`f`](https://h.io/b/bytes.html#bytes_to_unicode)", links
        )
        == "[`f`](01_bytes.ipynb#bytes-to-unicode)"
    )
    assert (
        build_book.quarto_markdown("::: {.callout-tip}\nHi\n:::") == ":::{tip}\nHi\n:::"
    )
    toc = build_book.toc_yaml(
        [
            (None, "index.ipynb"),
            ("A", "01_x.ipynb"),
            ("A", "02_y.ipynb"),
            ("B", "90_z.ipynb"),
        ]
    )
    assert toc == {
        "format": "jb-book",
        "root": "index",
        "parts": [
            {"caption": "A", "chapters": [{"file": "01_x"}, {"file": "02_y"}]},
            {"caption": "B", "chapters": [{"file": "90_z"}]},
        ],
    }


def test_chapters_are_committed_executed():
    """The book shows saved outputs: a notebook with code but not a single output was
    not executed."""
    bad = [
        n
        for _, f in build_book.sidebar_entries()
        if (n := build_book.unexecuted_note(ROOT / "nbs" / f))
    ]
    assert not bad, "\n".join(bad)


def markdown_outputs(path) -> str:
    "The saved markdown outputs of a notebook, concatenated."
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return "".join(
        "".join(o.get("data", {}).get("text/markdown", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
    )


def test_performance_appendix_is_current():
    """The appendix shows the latest line of every benchmarks/results/*.jsonl: re-run it
    after a benchmark."""
    shown = markdown_outputs(ROOT / "nbs" / "92_performance.ipynb")
    stale = []
    for f in sorted((ROOT / "benchmarks" / "results").glob("*.jsonl")):
        if f.stem == "speedrun":  # appendix D's table: test_speedrun checks it
            continue
        lines = [
            json.loads(l)
            for l in f.read_text(encoding="utf-8").splitlines()
            if l.strip()
        ]
        if not lines:
            continue
        when = (
            str(lines[-1].get("when", "?")).replace("T", " ").replace("+00:00", " UTC")
        )
        if f"Measured **{when}**" not in shown:
            stale.append(f"{f.name} (latest run {when})")
    assert not stale, (
        "nbs/92_performance.ipynb does not show the latest results of "
        + ", ".join(stale)
        + ": re-run it (python tools/execute_chapter.py nbs/92_performance.ipynb; "
        "nbdev_clean --fname nbs/92_performance.ipynb)"
    )


def test_readme_shows_latest_main_job():
    """README's measured figures (a cell of nbs/index.ipynb) come from the latest line
    of benchmarks/results/bench_main.jsonl."""
    f = ROOT / "benchmarks" / "results" / "bench_main.jsonl"
    if not f.is_file():
        pytest.skip("no main-job benchmark recorded yet")
    when = json.loads(f.read_text(encoding="utf-8").strip().splitlines()[-1])[
        "when"
    ].replace("T", " ")[:16]
    shown = markdown_outputs(ROOT / "nbs" / "index.ipynb")
    assert f"| measured | {when} UTC" in shown, (
        "nbs/index.ipynb (and so README.md) does not show the latest main-job "
        "benchmark: "
        "re-execute nbs/index.ipynb, then python tools/make_readme.py"
    )


@pytest.mark.slow  # headless Chromium over the built book: about 40 s
def test_in_browser(site):
    """Every page in headless Chromium: internal links, images, typeset math, no
    traceback; with LLM_TUTORIAL_SCREENSHOTS=DIR also one screenshot per page in DIR
    (to look at; they take two thirds of the check's time)."""
    # auto: when Chromium and playwright are installed; 1: required; 0: never
    want = os.environ.get("LLM_TUTORIAL_BROWSER", "auto")
    if want == "0":
        pytest.skip("browser check of the book turned off (LLM_TUTORIAL_BROWSER=0)")
    if why := check_book_browser.missing():
        assert want != "1", f"LLM_TUTORIAL_BROWSER=1 but {why}"
        pytest.skip(
            f"browser check of the book skipped: {why}; bash run.sh test installs "
            "both (Chromium when run as root)"
        )
    want_shots = os.environ.get("LLM_TUTORIAL_SCREENSHOTS")
    shots = Path(want_shots) if want_shots else None
    result = check_book_browser.check_book(site, shots, log=lambda *a: None)
    bad = {p: ps for p, ps in result.items() if ps}
    assert not bad, "problems a reader would see:\n" + "\n".join(
        f"{p}: {x}" for p, ps in bad.items() for x in ps
    )
    if shots is not None:
        assert sorted(s.name for s in shots.glob("*.png")) == sorted(
            Path(p).with_suffix(".png").name for p in result
        )
