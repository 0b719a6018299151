#!/usr/bin/env bash
# The test command: sets up .venv if needed (and tmux for the end-to-end test), then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || echo "warning: could not install tmux"
fi
bash scripts/setup.sh >/dev/null
exec .venv/bin/python -m pytest -q "$@"
