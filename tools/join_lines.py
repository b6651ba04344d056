"""Join formatter scaffolding in notebook code cells (issue 33): a bracket spread one
item a line becomes one line when it fits in 88 columns, else its items are packed
onto as few lines as fit. A change is kept only if the cell's AST stays equal;
comments, multi-line strings and `fmt: off` cells are left alone.

Usage: python tools/join_lines.py nbs/X.ipynb ...  (then nbdev_clean, nbdev_export)"""
import ast
import io
import json
import re
import sys
import tokenize

WIDTH = 88


def width(s):
    "Columns as ruff counts them; a non-ASCII character counts 2 (safe side)."
    return sum(1 if ord(ch) < 128 else 2 for ch in s)
STR = re.compile(r"^([rRbBuUfF]{0,2})(['\"])(?!\2\2)(.*)\2$", re.S)


def mask(src):
    "Hide IPython magics (kept line for line) so tokenize and ast can read the cell."
    out = []
    for line in src.split("\n"):
        s = line.lstrip()
        out.append("#" + line if s.startswith(("%", "!")) else line)
    return "\n".join(out)


def tree(src):
    try:
        return ast.dump(ast.parse(mask(src)))
    except SyntaxError:
        return None


def spans(src):
    toks = list(tokenize.generate_tokens(io.StringIO(mask(src)).readline))
    stack, out = [], []
    for i, t in enumerate(toks):
        if t.type == tokenize.OP and t.string in "([{":
            stack.append(i)
        elif t.type == tokenize.OP and t.string in ")]}":
            j = stack.pop()
            if toks[j].start[0] != t.start[0]:
                out.append((toks[j].start[0], t.start[0], j, i))
    return toks, out


def glue(a, b):
    "Join line `a` (rstripped) and `b` (stripped)."
    if a.endswith(("(", "[", "{")) or b.startswith((")", "]", "}")):
        if b.startswith((")", "]", "}")) and a.endswith(","):
            a = a[:-1]
        return a + b
    ma, mb = re.search(r"(\S+)$", a), re.match(r"^(\S.*?)(?=[,)\]}]|$)", b)
    sa = STR.match(ma.group(1)) if ma else None
    sb = STR.match(mb.group(1)) if mb else None
    if sa and sb:
        if sa.group(1) != sb.group(1) or sa.group(2) != sb.group(2):
            return None
        if sa.group(3).endswith("\\"):
            return None
        return a[:-1] + b[len(sb.group(1)) + 1:]
    if ma and (STR.match(ma.group(1).rstrip(",")) is None) and re.search(
            r"['\"]$", a) and re.match(r"^[rRbBuUfF]*['\"]", b):
        return None
    return a + " " + b


def ok_rows(toks, r0, r1, lines):
    for t in toks:
        if t.start[0] > r1:
            break
        if t.end[0] < r0:
            continue
        if t.type == tokenize.COMMENT and r0 <= t.start[0] < r1:
            return False
        if t.type == tokenize.STRING and t.start[0] != t.end[0]:
            return False
        if t.type == getattr(tokenize, "FSTRING_MIDDLE", -1) and t.start[0] != t.end[0]:
            return False
    return not any(lines[r].rstrip().endswith("\\") for r in range(r0 - 1, r1))


def try_join(lines, r0, r1):
    text = lines[r0 - 1].rstrip()
    for r in range(r0, r1):
        text = glue(text, lines[r].strip())
        if text is None:
            return None
    m = re.match(r"^(\s*from \S+ import )\((.*)\)$", text or "")
    if m:
        text = m.group(1) + m.group(2)
    return text if text is not None and width(text) <= WIDTH else None


def try_fill(lines, toks, r0, r1, inner):
    "Pack the item rows r0+1..r1-1 of a bracket opened at the end of r0."
    first, last = lines[r0 - 1].rstrip(), lines[r1 - 1].strip()
    if not first.endswith(("(", "[", "{")) or not last.startswith((")", "]", "}")):
        return None
    if any(r0 < a <= r1 - 1 for a, b in inner):
        return None
    items = [lines[r].strip() for r in range(r0, r1 - 1)]
    if not items:
        return None
    ind = len(lines[r0]) - len(lines[r0].lstrip())
    if first.lstrip().startswith(("def ", "async def ")):
        ind = len(first) - len(first.lstrip()) + 8
    pad = " " * ind
    out, cur = [], None
    for it in items:
        if cur is None:
            cur = pad + it
            continue
        j = glue(cur, it)
        if j is None:
            return None
        if width(j) <= WIDTH:
            cur = j
        else:
            out.append(cur)
            cur = pad + it
    j = glue(cur, last)
    if j is not None and width(j) <= WIDTH:
        out.append(j)
    else:
        out += [cur, lines[r1 - 1].rstrip()]
    new = [first] + out
    return new if len(new) < r1 - r0 + 1 else None


def join_cell(src):
    if "fmt: off" in src or tree(src) is None:
        return src
    want = tree(src)
    changed = True
    tried = set()
    while changed:
        changed = False
        try:
            toks, sp = spans(src)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            return src
        lines = src.split("\n")
        sp.sort(key=lambda s: s[0] - s[1])  # biggest first
        for r0, r1, j, i in sp:
            if not ok_rows(toks, r0, r1, lines):
                continue
            for how in ("join", "fill"):
                key = (how, "\n".join(lines[r0 - 1:r1]))
                if key in tried:
                    continue
                tried.add(key)
                if how == "join":
                    t = try_join(lines, r0, r1)
                    new = None if t is None else [t]
                else:
                    inner = [(a, b) for a, b, _, _ in sp if r0 <= a and b <= r1
                             and (a, b) != (r0, r1)]
                    new = try_fill(lines, toks, r0, r1, inner)
                if new is None:
                    continue
                cand = "\n".join(lines[:r0 - 1] + new + lines[r1:])
                if tree(cand) == want:
                    src, changed = cand, True
                    break
            if changed:
                break
    return src


def main(paths):
    for p in paths:
        nb = json.load(open(p))
        before = after = 0
        for c in nb["cells"]:
            if c["cell_type"] != "code":
                continue
            src = "".join(c["source"])
            new = join_cell(src)
            before += src.count("\n") + 1
            after += new.count("\n") + 1
            if new != src:
                c["source"] = [x + "\n" for x in new.split("\n")]
                c["source"][-1] = c["source"][-1][:-1]
        with open(p, "w") as f:
            json.dump(nb, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(p, before, "->", after)


if __name__ == "__main__":
    main(sys.argv[1:])
