"""Build the book offline: nbdev's doc processing, then Jupyter Book 1 (Sphinx) with
MathJax served locally.

Usage: python tools/build_book.py [--out DIR] [--no-warnings-as-errors]
[--keep-going]

The real book is rendered by Quarto (`nbdev_preview` / `nbdev_docs`), which cannot be
installed on every machine. This script renders the same processed notebooks without
Quarto and without the network:

1. every notebook listed in nbs/sidebar.yml (the one place for chapter order) goes
   through nbdev's own processors (`nbdev.processors.FilterDefaults`, what
   `nbdev_proc_nbs` runs), so `#| hide`, `#| exports`, `show_doc` and friends behave
   as in the Quarto book;
2. the processed notebooks are cleaned up for Jupyter Book 1 (front matter -> a `#
   Title` heading, Quarto `#| ...` options -> cell tags, the leading `---` rule of
   show_doc output removed, cell metadata and outputs reduced to what nbformat
   allows);
3. `_toc.yml` is generated from the sidebar and `_config.yml` written (no execution:
   notebooks carry their saved outputs; `sphinx-mathjax-offline` serves MathJax from
   the site itself);
4. `jupyter-book build -W` (warnings are errors) writes the site to DIR/_build/html
   (DIR defaults to _book/)."""

import argparse, json, os, re, shutil, subprocess, sys, time, warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
# an exported cell longer than this starts folded (a button shows it)
LONG_CELL_LINES = 40
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
DIRECTIVE = re.compile(r"^\s*#\|\s*(.*?)\s*$")


# ---------------------------------------------------------------- the chapter order,
# from nbs/sidebar.yml
def sidebar_entries(path: Path = NBS / "sidebar.yml") -> list[tuple[str | None, str]]:
    """`(section title or None, notebook file name)` for each page of the Quarto
    sidebar, in order."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        contents = data["website"]["sidebar"]["contents"]
    except (TypeError, KeyError):
        raise ValueError(
            f"{path}: expected website: sidebar: contents: [...]"
        ) from None
    out = []

    def walk(items, section):
        for it in items:
            if isinstance(it, str):
                out.append((section, it))
            elif isinstance(it, dict) and "contents" in it:
                walk(it["contents"], it.get("section") or it.get("text") or section)
            elif isinstance(it, dict) and "href" in it:
                out.append((section, it["href"]))
            else:
                raise ValueError(f"{path}: unsupported sidebar entry {it!r}")

    walk(contents, None)
    files = [f for _, f in out]
    if len(set(files)) != len(files):
        raise ValueError(f"{path}: a page is listed twice")
    return out


def toc_yaml(entries) -> dict:
    """Jupyter Book's `_toc.yml` (format jb-book): the first entry is the root, sidebar
    sections become parts."""
    (_, root), rest = entries[0], entries[1:]
    parts = []
    for section, f in rest:
        if not parts or parts[-1]["caption"] != (section or "Chapters"):
            parts.append({"caption": section or "Chapters", "chapters": []})
        parts[-1]["chapters"].append({"file": Path(f).with_suffix("").as_posix()})
    return {
        "format": "jb-book",
        "root": Path(root).with_suffix("").as_posix(),
        "parts": parts,
    }


# ---------------------------------------------------------------- nbdev processing
def nbdev_process(src: Path):
    """Run nbdev's doc processors on notebook `src` (as `nbdev_proc_nbs` does); returns
    the processed notebook."""
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults

    nb = read_nb(src)
    os.environ["IN_TEST"] = "1"
    # nbdev executes export/import/show_doc cells from the notebook's folder
    cwd = os.getcwd()
    os.chdir(src.parent)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            FilterDefaults()(nb)
    except Exception as e:
        lines = str(e).splitlines()
        e_msg = "\n".join(lines[:5]) + (
            f"\n    ... ({len(lines) - 5} more lines)" if len(lines) > 5 else ""
        )
        cause = (
            f"\n  caused by {type(e.__cause__).__name__}: {e.__cause__}"
            if e.__cause__
            else ""
        )
        raise RuntimeError(
            f"nbdev's doc processing failed: {e_msg}{cause}\n  (to render the docs "
            "nbdev runs, in a fresh namespace, only "
            "the cells that import something, the `#| exports` cells and the show_doc "
            "calls: each must run without the "
            "notebook's other cells; keep imports in cells of their own, and run no "
            "job at import)"
        ) from e
    finally:
        os.chdir(cwd)
        os.environ.pop("IN_TEST", None)
    # e.g. "Found cells containing imports and other code": nbdev runs such cells when
    # it renders the docs
    for w in caught:
        msg = str(w.message).strip().splitlines()
        print(
            f"  note: {src.name}: nbdev: {msg[0]}"
            + (
                f" [{next((l for l in msg[2:] if l.strip()), '')[:80]} ...]"
                if len(msg) > 2
                else ""
            ),
            file=sys.stderr,
        )
    return nb


# ---------------------------------------------------------------- clean-ups for Jupyter
# Book 1
def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else (x or "")


def split_directives(src: str) -> tuple[dict, str]:
    """Quarto/nbdev `#| key: value` lines at the top of a code cell -> (dict, the
    remaining source)."""
    lines, opts = src.splitlines(), {}
    i = 0
    while i < len(lines) and (m := DIRECTIVE.match(lines[i])):
        k, _, v = m.group(1).partition(":")
        opts[k.strip()] = v.strip().strip('"').strip("'")
        i += 1
    return opts, "\n".join(lines[i:])


def frontmatter_cell(src: str) -> str | None:
    """The markdown for a `---` YAML front matter raw cell: `# title` and the
    description as the lead paragraph."""
    m = re.match(r"^\s*---\s*\n(.*?)\n---\s*$", src, flags=re.S)
    if not m:
        return None
    fm = yaml.safe_load(m.group(1)) or {}
    if not isinstance(fm, dict) or "title" not in fm:
        return None
    md = f"# {fm['title']}"
    if fm.get("description"):
        md += f"\n\n*{' '.join(str(fm['description']).split())}*"
    return md


def clean_output(out: dict, doc_links: tuple[str, dict]) -> dict | None:
    """An nbformat-valid copy of an output; show_doc's leading `---` goes, links to the
    Quarto site go local."""
    t = out.get("output_type")
    if t == "stream":
        return {
            "output_type": "stream",
            "name": out.get("name", "stdout"),
            "text": _text(out.get("text")),
        }
    if t == "error":
        return {
            "output_type": "error",
            "ename": out.get("ename", ""),
            "evalue": out.get("evalue", ""),
            "traceback": list(out.get("traceback", [])),
        }
    if t in ("execute_result", "display_data"):
        # multi-line strings
        data = {
            k: (_text(v) if isinstance(v, list) else v)
            for k, v in out.get("data", {}).items()
        }
        if "text/markdown" in data:
            # show_doc's rule: a page may not start with a transition
            md = re.sub(r"^\s*---\s*\n", "", data["text/markdown"])
            data["text/markdown"] = localize_links(md, doc_links)
        o = {"output_type": t, "data": data, "metadata": out.get("metadata", {}) or {}}
        if t == "execute_result":
            o["execution_count"] = None
        return o
    return None


CALLOUT = re.compile(
    r"^(\s*:{3,})\s*\{\.callout-(note|tip|warning|important|caution)[^}]*\}", flags=re.M
)


def quarto_markdown(md: str) -> str:
    """Quarto-only markdown that MyST reads differently: callout blocks become
    admonitions of the same kind."""
    return CALLOUT.sub(lambda m: f"{m.group(1)}{{{m.group(2)}}}", md)


def localize_links(md: str, doc_links: tuple[str, dict]) -> str:
    """nbdev links backticked names to the published site
    (`{doc_host}{baseurl}/bytes.html#name`): point them at this book."""
    base, pages = doc_links
    if not base:
        return md

    def sub(m):
        page, anchor = m.group(1), m.group(2) or ""
        nb = pages.get(page)
        if nb is None:
            return m.group(0)
        anchor = anchor.lower().replace("_", "-").replace(".", "-")
        return f"]({nb}{anchor})"

    return re.sub(
        r"\]\(" + re.escape(base.rstrip("/")) + r"/([\w.-]+\.html)(#[\w.-]+)?\)",
        sub,
        md,
    )


def unexecuted_note(path: Path) -> str | None:
    """A note when a notebook's code cells carry no saved output at all (the book shows
    saved outputs only)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [
        c
        for c in nb["cells"]
        if c["cell_type"] == "code" and _text(c.get("source")).strip()
    ]
    if len(code) >= 3 and not any(c.get("outputs") for c in code):
        return (
            f"{path.name}: none of its {len(code)} code cells has a saved output: "
            "execute it before committing (CONTRIBUTING.md)"
        )
    return None


def clean_notebook(nb, doc_links) -> dict:
    """The processed notebook as a plain nbformat 4 dict that Jupyter Book 1 builds
    without warnings."""
    cells, titled = [], False
    for c in nb.cells:
        ct, src = c.get("cell_type"), _text(c.get("source"))
        if ct == "raw":
            md = frontmatter_cell(src)
            if md is None:
                continue  # other raw cells are not for HTML
            if titled:
                continue
            cells.append({"cell_type": "markdown", "metadata": {}, "source": md})
            titled = True
            continue
        if ct == "markdown":
            src = src.strip()
            if not src or re.fullmatch(r"<!--.*?-->", src, flags=re.S):
                continue
            if src.startswith("# "):
                titled = True
            cells.append(
                {
                    "cell_type": "markdown",
                    "metadata": {},
                    "source": quarto_markdown(localize_links(src, doc_links)),
                }
            )
            continue
        if ct != "code":
            continue
        opts, body = split_directives(src)
        if opts.get("include") == "false":
            continue
        outs = [
            o for o in (clean_output(o, doc_links) for o in c.get("outputs", [])) if o
        ]
        if opts.get("output") == "false":
            outs = []
        tags = []
        if opts.get("echo") == "false" or not body.strip():
            tags.append("remove-input")
        elif opts.get("code-fold") == "true" or (
            opts.get("code-fold") == "show" and body.count("\n") >= LONG_CELL_LINES
        ):
            # folded, with a button to show it (nbdev marks `#| exports` cells
            # `code-fold: show`)
            tags.append("hide-input")
        if not outs and "remove-input" in tags:
            continue
        if not outs:
            tags.append("remove-output")
        cells.append(
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {"tags": tags} if tags else {},
                "outputs": outs,
                "source": body.strip("\n"),
            }
        )
    if not titled:
        raise ValueError(
            "notebook has no title: start it with a markdown cell '# Title' (or front "
            "matter with a title)"
        )
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            },
            "language_info": {"name": "python"},
        },
    }


# ---------------------------------------------------------------- Jupyter Book config
def settings():
    "The project's settings.ini, read by nbdev itself."
    from nbdev.config import get_config

    return get_config(path=ROOT)


def book_config() -> dict:
    s = settings()
    return {
        "title": s.get("title", "llm_tutorial"),
        "author": s.get("author", ""),
        "copyright": s.get("copyright", ""),
        "only_build_toc_files": True,
        # the notebooks carry their saved outputs
        "execute": {"execute_notebooks": "off"},
        "parse": {
            "myst_enable_extensions": [
                "dollarmath",
                "amsmath",
                "colon_fence",
                "deflist",
                "smartquotes",
            ]
        },
        "html": {
            "use_repository_button": False,
            "use_issues_button": False,
            "use_edit_page_button": False,
            "home_page_in_navbar": True,
            "extra_footer": "",
            "use_multitoc_numbering": False,
        },
        "launch_buttons": {
            "notebook_interface": "classic",
            "binderhub_url": "",
            "jupyterhub_url": "",
            "thebe": False,
            "colab_url": "",
        },
        "sphinx": {
            # copies MathJax 3 into _static/ and points mathjax_path at it
            "extra_extensions": ["sphinx-mathjax-offline"],
            "config": {
                "myst_heading_anchors": 3,
                # $ math as pandoc (Quarto) reads it: no space inside the dollars, no
                # digit after the closing one,
                # so "$HOME or $XDG_CACHE_HOME" and "$5 and $6" stay text
                "myst_dmath_allow_space": False,
                "myst_dmath_allow_digits": False,
                "html_static_path": ["_static"],
                "html_css_files": ["book.css"],
                "html_show_sphinx": False,
                "html_theme_options": {
                    "navigation_with_keys": False,
                    "show_toc_level": 2,
                },
                "nb_merge_streams": True,
                # markdown outputs (show_doc, the appendix's tables) with tables and
                # math
                "nb_render_markdown_format": "myst",
                # show_doc entries are ### headings right under a ## section or the
                # title
                "suppress_warnings": ["myst.header"],
            },
        },
    }


BOOK_CSS = """/* written by tools/build_book.py: keep pages readable */
/* the chapters' code is written 88 columns wide: at a 1280 px window the article
   shows all 88 (narrower sidebars, code a little smaller than the prose) */
.bd-page-width { max-width: 110rem; }
.bd-main .bd-content .bd-article-container { max-width: 64rem; }
.bd-sidebar-primary { flex: 0 0 14rem; width: 14rem; }
.bd-sidebar-secondary { flex: 0 0 12rem; width: 12rem; }
.cell_input pre, .cell_output pre { font-size: 0.8rem; }
/* long outputs scroll inside their box instead of making a wall of text */
.cell_output .output pre, .cell_output pre { max-height: 30em; overflow-y: auto; }
.cell_output img { max-width: 100%; height: auto; }
/* show_doc signatures (markdown outputs) wrap instead of hiding their last arguments */
.cell_output > div[class^="highlight-"] pre { white-space: pre-wrap; }
/* printed text (a story, a long message) wraps at the column instead of scrolling sideways */
.cell_output .output.stream pre, .cell_output .output.text_plain pre { white-space: pre-wrap; overflow-wrap: anywhere; }
/* wide tables scroll sideways instead of pushing the page wider */
.bd-article table { display: block; overflow-x: auto; max-width: 100%; }
.bd-article table code { white-space: nowrap; }  /* a shape like (..., d_in) stays on one line */
"""  # noqa: E501 (CSS, one rule a line)


# ---------------------------------------------------------------- build
def prepare(src_dir: Path, entries, nbs: Path = NBS, log=print) -> None:
    """Write the processed, cleaned notebooks, `_toc.yml`, `_config.yml` and the CSS
    into `src_dir`."""
    s = settings()
    base = (s.get("doc_host", "") + s.get("doc_baseurl", "")).rstrip("/")
    # nbdev names each page after the notebook without its number prefix (01_bytes.ipynb
    # -> bytes.html)
    from nbdev.doclinks import _nbpath2html

    pages = {_nbpath2html(Path(f)).name: f for _, f in entries}
    if src_dir.exists():
        shutil.rmtree(src_dir)
    src_dir.mkdir(parents=True)
    for _, f in entries:
        path = nbs / f
        if not path.exists():
            raise FileNotFoundError(
                f"nbs/sidebar.yml lists {f}, but {path} does not exist"
            )
        t0 = time.perf_counter()
        if note := unexecuted_note(path):
            print(f"  note: {note}", file=sys.stderr)
        try:
            nb = clean_notebook(nbdev_process(path), (base, pages))
        except Exception as e:
            raise RuntimeError(f"{f}: {e}") from e
        (src_dir / f).parent.mkdir(parents=True, exist_ok=True)
        (src_dir / f).write_text(
            json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        log(f"  processed {f} ({time.perf_counter() - t0:.1f} s)")
    # pictures the notebooks' markdown may show (not data: only image files)
    for p in nbs.rglob("*"):
        rel = p.relative_to(nbs)
        if (
            any(part.startswith((".", "_")) for part in rel.parts)
            or p.suffix.lower() not in IMAGE_SUFFIXES
            or not p.is_file()
        ):
            continue
        (src_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, src_dir / rel)
    (src_dir / "_toc.yml").write_text(
        yaml.safe_dump(toc_yaml(entries), sort_keys=False), encoding="utf-8"
    )
    (src_dir / "_config.yml").write_text(
        yaml.safe_dump(book_config(), sort_keys=False), encoding="utf-8"
    )
    (src_dir / "_static").mkdir()
    (src_dir / "_static" / "book.css").write_text(BOOK_CSS, encoding="utf-8")


def fix_html(html: Path) -> None:
    """Jupyter Book 1 + sphinx-thebe write thebe's `const THEBE_JS_URL` script twice (a
    JavaScript error): keep one."""
    for page in html.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        lines, seen, keep = text.split("\n"), set(), []
        for line in lines:
            if line.strip().startswith("<script>const THEBE_JS_URL"):
                if line.strip() in seen:
                    continue
                seen.add(line.strip())
            keep.append(line)
        if len(keep) != len(lines):
            page.write_text("\n".join(keep), encoding="utf-8")


def build(
    out: Path = ROOT / "_book",
    warnings_as_errors: bool = True,
    keep_going: bool = False,
    nbs: Path = NBS,
    log=print,
) -> Path:
    """Build the book from the notebooks in `nbs` into `out`/_build/html and return that
    folder."""
    out, nbs = Path(out).resolve(), Path(nbs).resolve()
    entries = sidebar_entries(nbs / "sidebar.yml")
    src_dir = out / "src"
    t0 = time.perf_counter()
    prepare(src_dir, entries, nbs, log)
    html = out / "_build" / "html"
    if html.exists():
        shutil.rmtree(html)
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [
        str(jb) if jb.exists() else "jupyter-book",
        "build",
        str(src_dir),
        "--path-output",
        str(out),
        "--builder",
        "html",
        "--all",
    ]
    if warnings_as_errors:
        cmd.append("-W")
    if keep_going:
        cmd.append("--keep-going")
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0 or not (html / "index.html").exists():
        raise RuntimeError(
            "jupyter-book build failed (exit "
            f"{r.returncode}):\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
        )
    fix_html(html)
    log(f"built {len(entries)} pages into {html} in {time.perf_counter() - t0:.1f} s")
    return html


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        default=str(ROOT / "_book"),
        help="output folder (default _book/); the site is in OUT/_build/html",
    )
    ap.add_argument(
        "--nbs",
        default=str(NBS),
        help="the notebooks folder, with its sidebar.yml (default nbs/)",
    )
    ap.add_argument(
        "--no-warnings-as-errors",
        action="store_true",
        help="do not pass -W to jupyter-book",
    )
    ap.add_argument(
        "--keep-going",
        action="store_true",
        help="report every warning, not only the first",
    )
    a = ap.parse_args(argv)
    try:
        build(
            Path(a.out),
            warnings_as_errors=not a.no_warnings_as_errors,
            keep_going=a.keep_going,
            nbs=Path(a.nbs),
        )
    except (RuntimeError, ValueError, FileNotFoundError) as e:
        print(f"build_book: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
