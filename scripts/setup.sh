#!/usr/bin/env bash
# Sets up .venv with rnn-tui and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
# torch first, pinned: here that is a CPU build from local disk in seconds; an unpinned torch
# could pull a multi-GB CUDA build. pyproject.toml itself keeps a range for real users.
if ! python -c "import torch" 2>/dev/null; then
  pip install -q --disable-pip-version-check "torch==${TORCH_VERSION:-2.13.0}"
fi
pip install -q --disable-pip-version-check -e ".[test]"
echo "rnn-tui is installed in .venv: run .venv/bin/rnn-tui (or: . .venv/bin/activate && rnn-tui)"
