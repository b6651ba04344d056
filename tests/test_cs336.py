"""The CS336 adapters of llm_tutorial.cs336; CS336's own suite when CS336_TESTS is set.

`CS336_TESTS=../assignment1-basics .venv/bin/pytest tests/test_cs336.py` runs the tests
of a checkout of github.com/stanford-cs336/assignment1-basics against the book
(tools/run_cs336_tests.sh) and compares the adapters' names and parameters with its
tests/adapters.py. Without the variable only the first test runs.
"""

import ast
import inspect
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from llm_tutorial import cs336

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = os.environ.get("CS336_TESTS")
needs_checkout = pytest.mark.skipif(
    not CHECKOUT,
    reason="set CS336_TESTS to a checkout of stanford-cs336/assignment1-basics",
)


def test_every_adapter_is_defined():
    "Each name in CS336_ADAPTERS is a public, callable function of llm_tutorial.cs336."
    assert len(set(cs336.CS336_ADAPTERS)) == len(cs336.CS336_ADAPTERS) == 21
    for name in cs336.CS336_ADAPTERS:
        assert callable(getattr(cs336, name, None)), f"llm_tutorial.cs336 lacks {name}"
        assert name in cs336.__all__, f"{name} is not exported by `import *`"


def _checkout_signatures(path: Path) -> dict[str, list[str]]:
    "Parameter names of every function in CS336's adapters.py (read, not imported)."
    with warnings.catch_warnings():  # its docstrings hold escapes like "\T"
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(path.read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            out[node.name] = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
            out[node.name] += ["**" + a.kwarg.arg] if a.kwarg else []
    return out


def _our_parameters(name: str) -> list[str]:
    "Parameter names of our adapter `name`, `**` marking a keyword catch-all."
    params = inspect.signature(getattr(cs336, name)).parameters.values()
    return [("**" if p.kind == p.VAR_KEYWORD else "") + p.name for p in params]


@needs_checkout
def test_adapters_match_the_checkout():
    "Same functions as the checkout's adapters.py, with the same parameter names."
    theirs = _checkout_signatures(Path(CHECKOUT) / "tests" / "adapters.py")
    assert sorted(theirs) == sorted(cs336.CS336_ADAPTERS)
    for name, params in theirs.items():
        assert _our_parameters(name) == params, name


@needs_checkout
def test_cs336_suite_passes():
    "CS336's tests pass against the book (skipped tests: large fixtures missing)."
    env = dict(os.environ, VENV=sys.prefix)
    r = subprocess.run(
        ["bash", str(ROOT / "tools" / "run_cs336_tests.sh"), CHECKOUT],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
