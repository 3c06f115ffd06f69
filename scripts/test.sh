#!/usr/bin/env bash
# Run the test suite: scripts/setup.sh (idempotent), then pytest on two pytest-xdist
# workers with any arguments passed through, e.g.  bash scripts/test.sh tests/interop -x
# (-n 0 runs it in one process). Each module is one unit of work; the long scenarios
# (tests/support/serial_scheduler.py: SERIAL_MODULES) run one after another on one worker
# while the other worker runs the rest.
# The exit status is pytest's (5 = no tests collected counts as a failure too).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n "${BRIDGE_TEST_WORKERS:-2}" "$@"
