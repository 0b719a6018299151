#!/usr/bin/env bash
# Sets up .venv with rnn-tui and its test tools. Safe to run again. Says what it is doing as it
# goes (pip's own chatter is kept to the packages it fetches and installs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
start=$SECONDS
say() { printf '[setup %3ds] %s\n' "$((SECONDS - start))" "$*"; }
# pip's line for each package it fetches and the list it installed, indented; its errors go to
# stderr as they are
quiet_pip() {
  PYTHONUNBUFFERED=1 pip "$@" --disable-pip-version-check --progress-bar off \
    | awk '/^(Collecting|Successfully installed)/ { print "    " $0; fflush() }'
}
if [ -x .venv/bin/python ]; then
  say "using the virtual environment in .venv"
else
  say "creating a virtual environment in .venv ($("$PY" --version 2>&1))"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
say "updating pip"
pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
# torch first, pinned: here that is a CPU build from local disk in seconds; an unpinned torch
# could pull a multi-GB CUDA build. pyproject.toml itself keeps a range for real users.
if python -c "import torch" 2>/dev/null; then
  say "torch $(python -c 'import torch; print(torch.__version__)') is installed already"
else
  say "installing torch ${TORCH_VERSION:-2.13.0} (the largest download: a minute or more on a slow link)"
  quiet_pip install "torch==${TORCH_VERSION:-2.13.0}"
fi
say "installing rnn-tui and its test tools (textual, plotext, pytest, ruff, mypy…)"
quiet_pip install -e ".[test]"
say "done: rnn-tui is installed in .venv"
echo "To run it, put it on your PATH in this shell:  . .venv/bin/activate   (then: rnn-tui)"
