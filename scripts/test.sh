#!/usr/bin/env bash
# The test command (what CI runs, via .ci/run): sets up .venv if needed (and tmux for the
# end-to-end tests), then checks the habits the code keeps and runs the tests:
#   lint-imports   the floors import only downwards, no cycles (contracts in pyproject.toml)
#   ruff           lint and format
#   mypy           types (the seams between floors fully typed)
#   pytest         every test; about 5 minutes on 2 cores (`-m "not slow"`: under a minute)
# Arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow" -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing tmux for the end-to-end tests…"
  (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || echo "warning: could not install tmux"
fi
bash scripts/setup.sh >/dev/null
bin=.venv/bin
echo "== import contracts";  "$bin/lint-imports" --no-cache | tail -n 1
echo "== ruff";              "$bin/ruff" check rnn_tui tests benchmarks && "$bin/ruff" format --check --quiet rnn_tui tests benchmarks
echo "== mypy";              "$bin/mypy"
echo "== pytest"
exec "$bin/python" -m pytest -q -p no:cacheprovider "$@"
