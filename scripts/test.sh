#!/usr/bin/env bash
# Run the test suite: scripts/setup.sh (idempotent), then pytest with any arguments
# passed through, e.g.  bash scripts/test.sh tests/interop -x -q
# The exit status is pytest's (5 = no tests collected counts as a failure too).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
