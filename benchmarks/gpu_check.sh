#!/usr/bin/env bash
# The prepared GPU check (run by hand on a machine with one GPU; needs no network):
#   1. the CUDA tests (tests/test_cuda.py, pytest mark `cuda`) and the test cells of chapters 09
#      and 10, whose training runs pick the GPU (device auto),
#   2. benchmarks/gpu_check.py: the CS336 configuration in float32, bf16 and bf16 + compile,
#      tokens/s, MFU, loss and peak memory recorded in benchmarks/results/gpu_check.jsonl.
#   3. one speedrun (appendix D's rules, `--device cuda`): a row in benchmarks/results/speedrun.jsonl
#      (about 7 minutes; skipped in a dry run).
# Usage: bash benchmarks/gpu_check.sh [--dry-run] [gpu_check.py options]
#   --dry-run   everything on the CPU with a tiny model (checks the script; seconds, not minutes)
# Python: $PYTHON, else .venv/bin/python, else python3 (with torch, numpy, regex, tqdm, pytest); the
# package is imported from this checkout, so it need not be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
dry=0
for a in "$@"; do [ "$a" = "--dry-run" ] && dry=1; done
if [ "$dry" = 1 ]; then export LLM_TUTORIAL_TEST_DEVICE=${LLM_TUTORIAL_TEST_DEVICE:-cpu}; fi
echo "== 1/3 CUDA tests (device ${LLM_TUTORIAL_TEST_DEVICE:-cuda})"
"$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
NBT="$(dirname "$PY")/nbdev_test"
if [ "$dry" = 1 ]; then
  echo "== test cells of chapters 09 and 10 on the device: skipped in a dry run"
elif [ -x "$NBT" ]; then
  echo "== test cells of chapters 09 and 10 (their training runs use device auto: the GPU)"
  for nb in nbs/09d_train.ipynb nbs/10_generate.ipynb; do "$NBT" --path "$nb"; done
else
  echo "== test cells skipped: no nbdev_test next to $PY (bash run.sh setup installs it)"
fi
echo "== 2/3 the CS336 configuration: float32, bf16, bf16 + compile"
"$PY" benchmarks/gpu_check.py "$@"
if [ "$dry" = 1 ]; then
  echo "== 3/3 the speedrun on the device: skipped in a dry run"
else  # appendix D's rules unchanged, on the GPU: one row in benchmarks/results/speedrun.jsonl
  echo "== 3/3 the speedrun (appendix D) on the GPU: 5 minutes of training, then the judge"
  "$PY" -m llm_tutorial.cli speedrun --device cuda --no-progress --idea "the baseline on a GPU"
fi
