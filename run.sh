#!/usr/bin/env bash
# llm_tutorial's two commands (see README):
#   bash run.sh main [options]   set up .venv (runtime only) and run the main job
#   bash run.sh test [--slow]    set up .venv (with dev tools) and run every test: ruff, then pytest tests/
#                                on two workers: every notebook as nbdev_test runs it, project checks,
#                                README, offline book build and, where Chromium is installed or installable
#                                as root, its browser check (--slow: also the #| slow cells and the long
#                                cases, with LLM_TUTORIAL_SLOW=1)
#   bash run.sh setup            set up .venv with dev tools (JupyterLab included) and stop
# Variables: PYTHON (default python3), VENV (default .venv),
#            TORCH (pip requirement for PyTorch, default torch==2.13.0; e.g.
#            TORCH="torch --index-url https://download.pytorch.org/whl/cpu" for a CPU-only build)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH=${TORCH:-torch==2.13.0}

setup() {  # $1: "" (runtime) or "dev"
  local extra=${1:-}
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
  fi
  local want stamp="$VENV/.llm_tutorial-setup"
  want="$(cat pyproject.toml | sha256sum | cut -c1-16) $TORCH $extra"
  if ! grep -qxF "$want" "$stamp" 2>/dev/null; then
    echo "== installing PyTorch ($TORCH) and llm_tutorial${extra:+[$extra]} into $VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q $TORCH
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e ".${extra:+[$extra]}"
    echo "$want" >> "$stamp"
  fi
}

browser() {  # Chromium for the book's browser check (tests/test_book.py); installed from Debian when we are root
  [ "${LLM_TUTORIAL_BROWSER:-auto}" = "0" ] && return 0
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Chromium (Debian package) for the book's browser check; LLM_TUTORIAL_BROWSER=0 skips this"
    { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1 ||
      echo "== could not install Chromium: the browser check will be skipped"
  else
    echo "== Chromium not found: the book's browser check will be skipped (Debian: apt-get install chromium)"
  fi
}

shared_env() {  # point the test-data variables at ../shared/data when it is there
  local d
  d=$(cd .. && pwd)/shared/data
  if [ -d "$d" ]; then
    export LLM_TUTORIAL_SHARED="$d"
    export TIKTOKEN_CACHE_DIR="${TIKTOKEN_CACHE_DIR:-$d/tiktoken_cache}"
  else
    echo "== ../shared/data not found: tests that need it will be skipped"
  fi
}

cmd=${1:-}; shift || true
case "$cmd" in
  setup) setup dev ;;
  main)
    setup
    if [ ! -f llm_tutorial/cli.py ]; then  # until chapter 10 lands: show what exists
      echo "== the main job arrives with chapter 10; for now, the package and chapter 01's byte mapping:"
      exec "$VENV/bin/python" -c "import llm_tutorial as m; from llm_tutorial.utf8 import bytes_to_unicode as b; print('llm_tutorial', m.__version__); print(''.join(b()[x] for x in 'Hello, world!'.encode()))"
    fi
    "$VENV/bin/llm-tutorial" main "$@" ;;
  test)
    setup dev
    shared_env
    browser
    [ "${1:-}" = "--slow" ] && export LLM_TUTORIAL_SLOW=1   # the chapters' heavy-cell switch
    export MPLBACKEND=Agg
    # the exercise checks leave a warm worker (appendix F): none outlives the tests
    trap '"$VENV/bin/python" -c "from llm_tutorial.exercises import warm_stop as s; s()" \
      >/dev/null 2>&1 || true' EXIT
    t0=$SECONDS
    echo "== ruff check (88 columns, one statement a line: notebooks, tools, tests)"
    "$VENV/bin/ruff" check --no-cache .
    t1=$SECONDS
    echo "== pytest tests/: every chapter (tests/test_notebooks.py, as nbdev_test runs it;" \
      "those that read the shipped data on a fresh offline clone) and the project's tests," \
      "on two workers, the longest first"
    "$VENV/bin/python" -m pytest -q --durations=15 -n 2 --dist loadfile \
      --no-loadscope-reorder tests
    t2=$SECONDS
    echo "== times: ruff $((t1 - t0)) s, pytest $((t2 - t1)) s, all $((t2 - t0)) s" \
      "(set-up excluded)" ;;
  *)
    sed -n '2,12p' "$0"; exit 2 ;;
esac
