#!/usr/bin/env bash
# Runs Stanford CS336 assignment 1's own tests against the book's package.
#   bash tools/run_cs336_tests.sh [CS336_CHECKOUT] [pytest arguments ...]
# CS336_CHECKOUT: a clone of github.com/stanford-cs336/assignment1-basics (default:
# $CS336_TESTS). Its tests/ folder is copied to a temporary directory, adapters.py
# there is replaced by a two-line shim importing llm_tutorial.cs336, and pytest runs in
# that directory with the book's Python (VENV, default .venv). The checkout is not
# modified. With PYTHONPATH=DIR (an exercise edition after nbdev_export there), the
# tests run against the learner's own package instead of the book's.
# Tests whose fixture file is missing from the checkout (a copy without its large files)
# are skipped, naming the file (tools/cs336_plugin.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-${CS336_TESTS:-}}
[ $# -gt 0 ] && shift
if [ -z "$src" ]; then
  echo "usage: bash tools/run_cs336_tests.sh CS336_CHECKOUT [pytest args]" \
       "(or set CS336_TESTS)" >&2
  exit 2
fi
if [ ! -f "$src/tests/adapters.py" ]; then
  echo "$src is not a CS336 assignment-1 checkout: no tests/adapters.py in it" >&2
  exit 2
fi
py=${VENV:-$root/.venv}/bin/python
if [ ! -x "$py" ]; then
  echo "no Python at $py: run 'bash run.sh setup' first (or set VENV)" >&2
  exit 2
fi
need='import importlib.util as u, sys
print(" ".join(m for m in sys.argv[1:] if u.find_spec(m) is None))'
missing=$("$py" -c "$need" pytest numpy torch einops psutil tiktoken llm_tutorial)
if [ -n "$missing" ]; then
  echo "CS336's tests need $missing: $py -m pip install $missing" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/tests" "$tmp/tests"
cp "$root/tools/cs336_plugin.py" "$tmp/"
printf '[pytest]\n' > "$tmp/pytest.ini"
cat > "$tmp/tests/adapters.py" <<'SHIM'
# CS336's adapters, answered by the book's package (tools/run_cs336_tests.sh)
from llm_tutorial.cs336 import *  # noqa: F401,F403
SHIM
# PYTHONPATH is kept: PYTHONPATH=EDITION tests an exercise edition's own package
path="$tmp${PYTHONPATH:+:$PYTHONPATH}"
pkg=$(cd "$tmp" && PYTHONPATH="$path" "$py" -c 'import llm_tutorial as m; print(m.__file__)')
echo "== CS336's tests from $src, against llm_tutorial.cs336 of ${pkg%/__init__.py}"
cd "$tmp"
PYTHONPATH="$path" "$py" -m pytest tests -c pytest.ini -p cs336_plugin -rs "$@"
