"""Claims the build checks (issue 36), for the markdown and saved outputs of a notebook.

python tools/claims.py [NOTEBOOK ...]   # prints each problem; exit 1 if any

1. **Numbers.** Every *measured* number the prose quotes (one with a decimal point,
   three or more digits, or a percent sign) is in a saved output (or the code) of the
   same notebook, formatting aside (12.0 = 12, 6,584 = 6584, 52% = 0.52), or is cited:
   its sentence holds a link, or its markdown cell holds a line that starts with
   `Source:` (plain or in italics: `*Source: ...*`) naming where its figures come from
   (a handout, a paper, a benchmark log). Math, code spans, years, versions
   (`Python 3.11`), code points (`U+0120`) and addresses are not claims.
2. **Cross-references.** "chapter NN" names a notebook `NN_*.ipynb`; "Exercise N"
   (alone: this notebook's; "Exercise N of chapter NN"; "chapter NN's Exercise N") is
   an `### Exercise N` heading there; "appendix X" is the X-th notebook of the
   sidebar's Appendix section, whose title, if it names a letter, names X, and whose
   title is the one quoted (`appendix A (*Files, ...*)`); a section
   named in quotes (`section "Streaming"`) is a heading of that notebook; a relative
   link goes to a notebook that exists, and its `#anchor` to one of its headings.
3. **Names.** A backticked name that looks like the package's code (`snake_case`,
   `CamelCase`, `name()`, `Class.method`) exists: in `llm_tutorial` (a dotted name whose
   head is one of the package's classes, or `llm_tutorial.`, must resolve attribute by
   attribute), in the benchmark scripts, in the notebook's own code, in Python's
   builtins, torch or nbdev. Names right after "CS336" are the handout's
   (`(CS336 `learning_rate`)`).
4. **Paths.** No saved output holds an absolute path of the build machine (`/tmp/...`,
   `/root/...`, `/home/...`, `/work/...`, a temporary folder).

A problem reads `NOTEBOOK cell N: KIND: ...`."""

import builtins
import importlib
import importlib.util
import json
import keyword
import pkgutil
import re
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
LIB = ROOT / "llm_tutorial"

# ---------------------------------------------------------------- notebooks


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else (x or "")


def source(cell: dict) -> str:
    return _text(cell.get("source", ""))


def output_texts(cell: dict) -> list[str]:
    "The text of each saved output of a code cell (streams, text/* data, errors)."
    out = []
    for o in cell.get("outputs", []):
        out.append(_text(o.get("text", "")))
        out += [_text(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
        out += [_text(o.get("traceback", ""))]
    return [t for t in out if t]


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- 1. numbers

SOURCE_LINE = re.compile(r"^\W{0,3}Source:", re.M)  # the cited-figures marker
LINK = re.compile(r"\]\(https?://")
NUMBER = re.compile(  # 6,584  12.0  52%  327.68M (a k/M/G/B/T suffix, not a name)
    r"(?<![\w.,/+#-])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s?%)?"
    r"(?:(?=([kMGT]B?|B)\b)|(?![\w/]|\.\d|,\d))"
)
UNIT = re.compile(
    r"\s?(?:s|ms|h|min|seconds?|minutes?|steps?|tokens?|bytes?|[kMGT]B)\b"
)
SCALE = {"k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}  # 298k = 298,000 (to 1,000)
NOT_A_CLAIM = re.compile(  # a version, a code point or a port: the word before it
    r"(?:Python|Unicode|version|v|U\+|port|PyTorch|torch|CUDA|nbdev|Quarto)\s?$", re.I
)
SENTENCE = re.compile(r"(?<=[.!?:;])\s+(?=[A-Z(*|\-])|\n\s*\n|\n(?=\s*[|*-] )")


def _values(text: str) -> set[float]:
    "Every number written in `text`, as floats (6,584 -> 6584; 12% -> 12; 1e-3)."
    found, text = set(), re.sub(r"(?<=\d)_(?=\d)", "", text)  # 10_000
    for m in re.finditer(r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?", text):
        found.add(float(m[1].replace(",", "") + (m[2] or "")))
    for m in re.finditer(r"\d+(?:\.\d+)?[eE][-+]?\d+", text):
        found.add(float(m[0]))
    return found


def _matches(x: float, places: int, pct: bool, seen: set[float], scale=1.0) -> bool:
    """Whether an output holds `x` as written: rounded to its places, as a share (52%
    = 0.52) or scaled (298k = 298,114)."""
    tol = 0.5 * 10**-places
    cands = [(x, tol), (x * scale, tol * scale)]  # (value, how far rounding goes)
    cands += [(x / 100, tol / 100)] if pct else []
    return any(abs(v - c) <= t + 1e-12 for v in seen if abs(v) < 1e15 for c, t in cands)


def prose(md: str) -> str:
    "Markdown without code blocks, math, code spans and HTML tags (links kept)."
    md = re.sub(r"```.*?```", " ", md, flags=re.S)
    md = re.sub(r"\$\$.*?\$\$|\$[^$]*?\$", " ", md, flags=re.S)
    md = re.sub(r"`[^`]*`", " ", md)
    return re.sub(r"<!--.*?-->|<[^>\n]*>", " ", md, flags=re.S)


def seen_values(nb: dict) -> set[float]:
    "The numbers a notebook shows: its code, saved outputs and cited (Source:) cells."
    texts = []
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            texts += [source(c), *output_texts(c)]
        elif SOURCE_LINE.search(source(c)):
            texts.append(source(c))
    return _values("\n".join(texts))


def number_problems(nb: dict, name: str, book: "Book | None" = None) -> list[str]:
    """Measured numbers of the prose that no output, code or cited cell of this
    notebook (or of a notebook its sentence links to) holds."""
    seen = seen_values(nb)
    problems = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "markdown" or SOURCE_LINE.search(source(c)):
            continue
        for sentence in SENTENCE.split(prose(source(c))):
            if LINK.search(sentence):  # a sentence that links to its source
                continue
            also = set()
            for m in REL_LINK.finditer(sentence):
                target = m[1].replace(".html", ".ipynb")
                if book is not None and target in book.nbs:
                    also |= seen_values(book.nb(target))
            sentence = re.sub(r"\]\([^)]*\)", "]", sentence)  # targets are no claims
            for m in NUMBER.finditer(sentence):
                whole, frac, pct = m[1], m[2] or "", bool(m[3])
                x = float(whole.replace(",", "") + frac)
                measured = frac or pct or len(whole.replace(",", "")) >= 3
                whole_number = not frac and not pct
                year = 1900 <= x <= 2100 and not UNIT.match(sentence, m.end())
                if not measured or whole_number and (year or _pow2(x)):
                    continue  # a year, or a size (256 bytes, 4,096-character chunks)
                if NOT_A_CLAIM.search(sentence[: m.start()]):
                    continue
                places = len(frac) - 1 if frac else 0
                scale = SCALE.get(m[4] or "", 1.0)
                if not _matches(x, places, pct, seen | also, scale):
                    text = " ".join(sentence.split())
                    problems.append(
                        f"{name} cell {i}: number: {m[0].strip()!r} is in no output "
                        f"(print it from the cell that measures it, or cite it): "
                        f"“{_around(text, m[0].strip())}”"
                    )
    return problems


def _pow2(x: float) -> bool:
    return x.is_integer() and x > 0 and int(x) & (int(x) - 1) == 0


def _around(text: str, needle: str, width: int = 110) -> str:
    at = max(text.find(needle), 0)
    start = max(0, at - width // 2)
    return ("…" if start else "") + text[start : start + width]


# ---------------------------------------------------------------- 2. cross-references

EX_HEADING = re.compile(r"^### Exercise (\d+)\b", re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)
CHAPTER = re.compile(
    r"\b[Cc]hapters?\s+(\d\d[a-z]?)(?:_(\w+))?(?:\s*[–-]\s*(\d\d[a-z]?))?"
)
EX_OF = re.compile(
    r"\b[Ee]xercises? (\d+) (?:of|in) (?:[Cc]hapter|[Aa]ppendix) (\d\d[a-z]?|[A-Z])\b"
)
EX_POSS = re.compile(r"\b[Cc]hapter (\d\d[a-z]?)'s [Ee]xercises? (\d+)\b")
EX_ALONE = re.compile(
    r"\b[Ee]xercises? (\d+)\b(?! (?:of|in) (?:[Cc]hapter|[Aa]ppendix))"
)
APPENDIX = re.compile(r"\b[Aa]ppendi(?:x|ces) ([A-Z])\b")
APPENDIX_TITLE = (
    re.compile(  # appendix A (*Files, ...*), the appendix 'The exercise ...'
        r"\b[Aa]ppendix(?: ([A-Z]))? \(?[*'\"“]([^*'\"”]{3,})[*'\"”]"
    )
)
SECTION = re.compile(r"\b[Ss]ection [\"“']([^\"”']+)[\"”']")
REL_LINK = re.compile(r"\]\((?!https?:|mailto:)([^)\s#]*)(?:#([^)\s]*))?\)")


def slug(heading: str) -> str:
    "Quarto's anchor of a heading: lower case, punctuation dropped, spaces to dashes."
    h = re.sub(r"`([^`]*)`", r"\1", heading).lower()
    h = re.sub(r"[^\w\s-]", "", h)
    return re.sub(r"\s+", "-", h.strip())


def headings(nb: dict) -> list[str]:
    md = "\n".join(
        re.sub(r"```.*?```", "", source(c), flags=re.S)
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
    )
    return [m[1] for m in HEADING.finditer(md)]


def exercises(nb: dict) -> set[int]:
    return {
        int(m[1])
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
        for m in EX_HEADING.finditer(source(c))
    }


@cache
def appendices() -> tuple[str, ...]:
    "The notebooks of the sidebar's Appendix section, in order (A, B, ...)."
    text = (NBS / "sidebar.yml").read_text(encoding="utf-8")
    part = text.split('section: "Appendix"', 1)[1] if "Appendix" in text else ""
    return tuple(re.findall(r"-\s+(\S+\.ipynb)", part))


class Book:
    "The notebooks a reference can point to, read once."

    def __init__(self, folder: Path = NBS, extra: dict[str, dict] | None = None):
        self.folder = folder
        self.nbs = {p.name: None for p in sorted(folder.glob("*.ipynb"))}
        self.nbs.update(extra or {})

    def nb(self, name: str) -> dict:
        if self.nbs.get(name) is None:
            self.nbs[name] = load(self.folder / name)
        return self.nbs[name]

    def chapter(self, key: str, stem: str | None = None) -> list[str]:
        "The notebooks that 'chapter KEY' (or 'chapter KEY_STEM') names."
        if stem:
            return [n for n in self.nbs if n == f"{key}_{stem}.ipynb"]
        # chapter 09 is 09a_config ... 09d_train; chapter 10b is 10b_job
        return [n for n in self.nbs if re.fullmatch(rf"{key}[a-z]?", n.split("_")[0])]

    def appendix(self, letter: str) -> str | None:
        i = ord(letter) - ord("A")
        names = appendices()
        return names[i] if 0 <= i < len(names) else None


def reference_problems(nb: dict, name: str, book: Book) -> list[str]:
    problems = []

    def bad(i, what):
        problems.append(f"{name} cell {i}: reference: {what}")

    own = exercises(nb)
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "markdown":
            continue
        raw = source(c)
        text = " ".join(re.sub(r"```.*?```|`[^`]*`", " ", raw, flags=re.S).split())
        if i == 0 and (m := re.match(r"# Appendix ([A-Z])\b", raw)):
            if book.appendix(m[1]) != name:
                bad(i, f"the title says appendix {m[1]}, the sidebar makes "
                       f"{name} appendix {_letter(name)}")  # fmt: skip
        for m in CHAPTER.finditer(text):
            for key in filter(None, (m[1], m[3])):
                if not book.chapter(key, m[2] if key == m[1] else None):
                    bad(i, f"“{m[0]}”: no notebook {key}_*.ipynb")
        for m in APPENDIX.finditer(text):
            if book.appendix(m[1]) is None:
                bad(i, f"“{m[0]}”: the sidebar has {len(appendices())} appendices")
        for m in APPENDIX_TITLE.finditer(text):
            names = [book.appendix(m[1])] if m[1] else list(appendices())
            want = " ".join(m[2].lower().split())
            if not any(want in _title(book, nm) for nm in names if nm):
                bad(
                    i, f"“{m[0]}”: no appendix{' ' + m[1] if m[1] else ''} is titled so"
                )
        for m in EX_OF.finditer(text):
            _exercise(book, bad, i, m[0], m[2], int(m[1]))
        for m in EX_POSS.finditer(text):
            _exercise(book, bad, i, m[0], m[1], int(m[2]))
        if own:
            for m in EX_ALONE.finditer(text):
                before = text[max(0, m.start() - 25) : m.start()]
                if re.search(r"(?:[Cc]hapter \w+'s|[Aa]ppendix \w's)\s*$", before):
                    continue
                if int(m[1]) not in own:
                    bad(i, f"“{m[0]}”: this notebook's exercises are {sorted(own)}")
        for m in SECTION.finditer(text):
            around = text[max(0, m.start() - 60) : m.end() + 25]
            where = [nm for k in re.findall(r"[Cc]hapter (\d\d[a-z]?)", around)
                     for nm in book.chapter(k)] or [name]  # fmt: skip
            titles = [slug(h) for nm in where for h in headings(book.nb(nm))]
            if not any(t.startswith(slug(m[1])) for t in titles):
                bad(i, f"“{m[0]}”: no such heading in {', '.join(where)}")
        for m in REL_LINK.finditer(raw):
            target, anchor = m[1], m[2]
            if target and not target.endswith((".ipynb", ".md", ".html")):
                continue
            if target and target.replace(".html", ".ipynb") not in book.nbs:
                if not (book.folder / target).exists():
                    bad(i, f"link to {target}: no such notebook")
                continue
            if anchor:
                there = book.nb(target.replace(".html", ".ipynb")) if target else nb
                if anchor not in {slug(h) for h in headings(there)}:
                    bad(i, f"link #{anchor}: no such heading in {target or name}")
    return problems


def _title(book: Book, name: str) -> str:
    "A notebook's title, lower case, without '# Appendix X:'."
    first = (
        source(book.nb(name)["cells"][0]).splitlines()[0] if name in book.nbs else ""
    )
    return " ".join(
        re.sub(r"^#\s*(?:Appendix(?: [A-Z])?:\s*)?", "", first).lower().split()
    )


def _letter(name: str) -> str:
    names = appendices()
    return chr(ord("A") + names.index(name)) if name in names else "(none)"


def _exercise(book: Book, bad, i: int, said: str, where: str, n: int) -> None:
    names = book.appendix(where) if where.isalpha() and where.isupper() else None
    names = [names] if names else book.chapter(where)
    if not any(n in exercises(book.nb(nm)) for nm in names):
        have = sorted(set().union(*(exercises(book.nb(nm)) for nm in names)))
        bad(i, f"“{said}”: {'/'.join(names) or where} has exercises {have}")


# ---------------------------------------------------------------- 3. names

CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
HANDOUT = re.compile(r"CS336 (?:`[^`]*`,? ?)*$")  # (CS336 `learning_rate`): its names


@cache
def package() -> dict[str, object]:
    "Every top-level name of every module of `llm_tutorial`, and the modules."
    sys.path.insert(0, str(ROOT))
    import llm_tutorial

    names: dict[str, object] = {"llm_tutorial": llm_tutorial}
    for mod in pkgutil.iter_modules(llm_tutorial.__path__):
        if mod.name.startswith("_"):
            continue
        m = importlib.import_module(f"llm_tutorial.{mod.name}")
        names[mod.name] = m
        for k, v in vars(m).items():
            if getattr(v, "__module__", "").startswith("llm_tutorial") or (
                not k.startswith("__") and k not in names
            ):
                names.setdefault(k, v)
    return names


@cache
def package_identifiers() -> frozenset[str]:
    """Every word written in the package's source and the benchmark scripts (functions,
    fields, arguments, the keys of its records)."""
    files = [*LIB.glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    return frozenset(
        w for p in files for w in re.findall(r"\w+", p.read_text(encoding="utf-8"))
    )


@cache
def foreign_names() -> frozenset[str]:
    "Python's builtins and keywords, torch's and nbdev's names (the book quotes them)."
    out = set(dir(builtins)) | set(keyword.kwlist)
    try:
        import torch
        import torch.nn.functional as F

        for m in (torch, torch.nn, F, torch.Tensor, torch.nn.Module, torch.optim):
            out |= set(dir(m))
    except ImportError:
        pass
    try:  # the tools the book is built with: nbdev_export, nbdev_test
        import nbdev

        out |= set(dir(nbdev)) | {"nbdev_test", "nbdev_clean", "nbdev_preview"}
    except ImportError:
        pass
    return frozenset(out)


def looks_like_code(span: str) -> str | None:
    "The name in a code span that looks like the package's code, or None."
    s = span.strip()
    s = re.sub(r"\((?:[^()]*)\)$", "", s) if re.fullmatch(r"[\w.]+\(.*\)", s) else s
    if not DOTTED.fullmatch(s) or s.isupper() and "_" not in s:
        return None
    parts = s.split(".")
    if len(parts) > 1:  # a class's attribute, or a module's written in full
        head = package().get(parts[0])
        return s if isinstance(head, type) or parts[0] == "llm_tutorial" else None
    if "_" in s.strip("_") or re.search(r"[a-z][A-Z]", s) or span.strip().endswith(")"):
        return s
    return None


def _resolves(dotted: str) -> bool:
    head, *rest = dotted.split(".")
    obj = package()[head]
    for part in rest:
        fields = getattr(obj, "__dataclass_fields__", {}) or {}
        notes = getattr(obj, "__annotations__", {}) if isinstance(obj, type) else {}
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif part in fields or part in notes:
            return True
        elif hasattr(obj, "__path__") and importlib.util.find_spec(
            f"{obj.__name__}.{part}"
        ):
            obj = importlib.import_module(f"{obj.__name__}.{part}")
        else:
            return False
    return True


def notebook_identifiers(nb: dict) -> set[str]:
    return {
        w
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for w in re.findall(r"[A-Za-z_]\w*", source(c))
    }


def name_problems(nb: dict, name: str) -> list[str]:
    mine = notebook_identifiers(nb)
    known = package_identifiers() | foreign_names() | mine
    problems = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "markdown":
            continue
        md = re.sub(r"```.*?```", " ", source(c), flags=re.S)
        for m in CODE_SPAN.finditer(md):
            found = looks_like_code(m[1])
            if found is None or HANDOUT.search(md[: m.start()]):
                continue
            ok = _resolves(found) if "." in found else found in known
            if not ok:
                problems.append(
                    f"{name} cell {i}: name: `{found}` is not in llm_tutorial "
                    "nor in this notebook's code"
                )
    return problems


# ---------------------------------------------------------------- 4. paths

BUILD_PATH = re.compile(
    r"(?<![\w.~])(?:/(?:tmp|var/tmp|var/folders|private/var|root|home|work|Users|mnt"
    r"|scratch)/[^\s'\"<>)\]]*|[A-Za-z]:\\(?:Users|Temp|Windows)\\[^\s'\"]*)"
)


def path_problems(nb: dict, name: str) -> list[str]:
    problems = []
    for i, c in enumerate(nb["cells"]):
        for t in output_texts(c):
            for m in BUILD_PATH.finditer(t):
                problems.append(
                    f"{name} cell {i}: path: a saved output holds the build machine's "
                    f"path {m[0][:70]!r} (print it relative to a folder the reader "
                    "knows)"
                )
    return problems


# ---------------------------------------------------------------- all of them


def problems(nb: dict, name: str, book: Book | None = None) -> list[str]:
    book = book or Book()
    return (
        number_problems(nb, name, book)
        + reference_problems(nb, name, book)
        + name_problems(nb, name)
        + path_problems(nb, name)
    )


def main(argv) -> int:
    paths = [Path(a) for a in argv] or sorted(NBS.glob("*.ipynb"))
    book, found = Book(), []
    for p in paths:
        found += problems(load(p), p.name, book)
    print("\n".join(found) or "no problems")
    print(f"{len(found)} problems", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
