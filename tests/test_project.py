"""Project-level checks: one source of truth for metadata, README up to date, package in
sync with notebooks."""

import shutil, subprocess, sys, tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def settings():
    "settings.ini, read by nbdev itself (the project's one reader of it)."
    from nbdev.config import get_config

    return get_config(path=ROOT)


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_agrees_with_settings_ini():
    s, p = settings(), pyproject()["project"]
    assert p["name"] == s["lib_name"]
    assert p["version"] == s["version"]
    assert p["requires-python"] == f">={s['min_python']}"
    assert p["description"] == s["description"]
    assert p["dependencies"] == s["requirements"].split()
    assert p["optional-dependencies"]["dev"] == s["dev_requirements"].split()
    name, target = s["console_scripts"].split("=")
    assert p["scripts"] == {name: target}


def test_version_in_package():
    import llm_tutorial

    assert llm_tutorial.__version__ == settings()["version"]


def test_quarto_config_layout():
    link = ROOT / "nbs" / "_quarto.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "_quarto.yml").resolve()
    assert (
        "metadata-files: [nbdev.yml, sidebar.yml]" in (ROOT / "_quarto.yml").read_text()
    )


def test_sidebar_lists_every_notebook():
    text = (ROOT / "nbs" / "sidebar.yml").read_text()
    nbs = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb"))
    listed = [
        l.strip()[2:]
        for l in text.splitlines()
        if l.strip().startswith("- ") and l.strip().endswith(".ipynb")
    ]
    assert sorted(listed) == nbs, "every notebook appears once in nbs/sidebar.yml"
    # reading order: the chapters in numeric order, then the appendices (reference pages
    # whose
    # numbers place their modules before the chapters that import them; see
    # CONTRIBUTING.md)
    main, _, appendix = text.partition('section: "Appendix"')
    chapters = [n for n in listed if n[:2].isdigit() and n in main]
    assert chapters == sorted(chapters), "chapters are listed in numeric order"
    assert appendix and all(
        n in appendix for n in listed if n not in chapters and n[:2].isdigit()
    )


def test_readme_is_generated_from_index():
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_in_sync_with_notebooks(tmp_path):
    "nbdev_export on a copy of the tree changes nothing in llm_tutorial/."
    for name in ["settings.ini", "pyproject.toml", "_quarto.yml"]:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "nbs", tmp_path / "nbs", symlinks=True)
    shutil.copytree(
        ROOT / "llm_tutorial",
        tmp_path / "llm_tutorial",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    exe = Path(sys.executable).parent / "nbdev_export"
    subprocess.run([str(exe)], cwd=tmp_path, check=True, capture_output=True)
    for f in sorted((ROOT / "llm_tutorial").glob("*.py")):
        assert (tmp_path / "llm_tutorial" / f.name).read_text() == f.read_text(), (
            f"{f.name} differs from nbdev_export output: edit nbs/, run nbdev_export"
        )
    extra = {f.name for f in (tmp_path / "llm_tutorial").glob("*.py")} - {
        f.name for f in (ROOT / "llm_tutorial").glob("*.py")
    }
    assert not extra, f"nbdev_export creates modules that are not committed: {extra}"


LEAD_PENDING: set[str] = set()  # chapters allowed to lack the switch (none)


def _slow_cells(nb: dict) -> list[dict]:
    "The code cells of a notebook flagged `#| slow`."

    def flagged(c):
        head = "".join(c["source"]).splitlines()[:5]
        return any(l.replace(" ", "").strip() == "#|slow" for l in head)

    return [c for c in nb["cells"] if c["cell_type"] == "code" and flagged(c)]


def _notebooks():
    "(path, notebook) for every notebook of the book."
    import json

    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        yield p, json.loads(p.read_text(encoding="utf-8"))


def test_heavy_cells_keep_their_outputs():
    "No #| slow cell saved the 'skipped' note (executed without LLM_TUTORIAL_SLOW)."
    import json

    for p, nb in _notebooks():
        for c in _slow_cells(nb):
            text = json.dumps(c.get("outputs", []))
            assert "skipped a heavy cell" not in text, f"{p.name}: re-run slow cells"


def test_chapters_with_heavy_cells_have_the_switch():
    "A chapter with #| slow cells calls heavy_cells() before them (Run All skips them)."
    for p, nb in _notebooks():
        slow = _slow_cells(nb)
        if not slow or p.name in LEAD_PENDING:
            continue
        first = nb["cells"].index(slow[0])
        code = [c for c in nb["cells"][:first] if c["cell_type"] == "code"]
        before = "".join("".join(c["source"]) for c in code)
        assert "heavy_cells(" in before, f"{p.name}: no heavy_cells() call"
