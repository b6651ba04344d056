"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which these machines
cannot install).

Usage: python tools/make_readme.py [--check]   (--check: exit 1 if README.md is out
of date)"""

import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"^\s*#\|\s*(.*)$")


def cell_directives(src: str) -> list[str]:
    return [
        m.group(1).strip() for line in src.splitlines() if (m := DIRECTIVE.match(line))
    ]


def output_text(out: dict) -> str:
    if out.get("output_type") == "stream":
        return "".join(out.get("text", ""))
    data = out.get("data", {})
    return "".join(data.get("text/markdown") or data.get("text/plain") or "")


def render(nb: dict) -> str:
    parts = []
    for i, cell in enumerate(nb["cells"]):
        src = "".join(cell["source"])
        dirs = cell_directives(src)
        if any(d.startswith(("hide", "include: false", "export")) for d in dirs):
            continue
        src = "\n".join(l for l in src.splitlines() if not DIRECTIVE.match(l)).strip()
        if cell["cell_type"] == "markdown":
            # nbdev front matter: "# Title\n> description" becomes a title and a quote
            if i == 0:
                src = re.sub(r"^> (.*)$", r"> \1", src, flags=re.M)
            parts.append(src)
        # only the output; markdown output stays markdown
        elif cell["cell_type"] == "code" and "echo: false" in dirs:
            md = "".join(
                "".join(o.get("data", {}).get("text/markdown", ""))
                for o in cell.get("outputs", [])
            ).strip()
            outs = (
                md or "".join(output_text(o) for o in cell.get("outputs", [])).rstrip()
            )
            if outs:
                parts.append(outs if md else f"```\n{outs}\n```")
        elif cell["cell_type"] == "code" and src:
            parts.append(f"```python\n{src}\n```")
            outs = "".join(output_text(o) for o in cell.get("outputs", [])).rstrip()
            if outs:
                parts.append(f"```\n{outs}\n```")
    head = (
        "<!-- generated from nbs/index.ipynb by tools/make_readme.py: "
        "edit the notebook, not this file -->\n\n"
    )
    return head + "\n\n".join(parts) + "\n"


def main(argv):
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    text = (
        render(nb)
        .replace("](0", "](nbs/0")
        .replace("](1", "](nbs/1")
        .replace("](9", "](nbs/9")
    )
    readme = ROOT / "README.md"
    if "--check" in argv:
        if not readme.exists() or readme.read_text(encoding="utf-8") != text:
            print("README.md is out of date: run `python tools/make_readme.py`")
            return 1
        return 0
    readme.write_text(text, encoding="utf-8")
    print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
