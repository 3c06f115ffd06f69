#!/usr/bin/env bash
# Set up this checkout for running the bridge and its tests (idempotent).
#
# For a fresh Debian/Ubuntu machine, run as root (or as a user with sudo):
#   1. apt packages, only those missing: rabbitmq-server (the tests start their own
#      private broker on loopback, never the system service) and python3-venv when
#      the system python needs it (apt-get update runs first, only when installing);
#   2. .venv with Python >= 3.11 (PYTHON=/path/to/python to choose), if missing;
#   3. pip install -e '.[test]' with the pins in scripts/constraints.txt
#      (BRIDGE_NO_CONSTRAINTS=1 to float them); skipped when nothing changed since
#      the last successful install (stamp: .venv/.bridge-setup-stamp).
#
# If apt had to install rabbitmq-server and the distribution started its system
# service (listening on all interfaces), that service is stopped and disabled again;
# BRIDGE_KEEP_RABBITMQ_SERVICE=1 leaves it alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.bridge-setup-stamp"

log() { echo "[setup] $*" >&2; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (run this script as root, or install sudo)"
    fi
}

py_ok() {  # usable to build our venv: Python >= 3.11 with a working venv/ensurepip
    "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        >/dev/null 2>&1
}

find_python() {
    local cand
    for cand in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1 && py_ok "$cand"; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

# ---- 1. system packages ------------------------------------------------------------
missing=()
if [ ! -x /usr/sbin/rabbitmq-server ] && ! command -v rabbitmq-server >/dev/null 2>&1; then
    missing+=(rabbitmq-server)
fi
if [ ! -x "$VENV/bin/python" ] && ! find_python >/dev/null; then
    missing+=(python3 python3-venv)
fi
if ! command -v setpriv >/dev/null 2>&1; then
    missing+=(util-linux)  # setpriv: test peers die with the test run
fi

installed_rabbitmq=0
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them by hand"
    log "installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
    case " ${missing[*]} " in *" rabbitmq-server "*) installed_rabbitmq=1 ;; esac
fi

if [ "$installed_rabbitmq" = 1 ] && [ "${BRIDGE_KEEP_RABBITMQ_SERVICE:-0}" != 1 ] \
        && command -v systemctl >/dev/null 2>&1 \
        && systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
    log "stopping the rabbitmq-server system service apt just started (tests run their own)"
    as_root systemctl disable --now rabbitmq-server || log "warning: could not stop it"
fi

# ---- 2. virtualenv -----------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    PY="$(find_python)" || die "no Python >= 3.11 with venv support found (set PYTHON=...)"
    log "creating .venv with $("$PY" --version 2>&1) ($PY)"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die ".venv has Python < 3.11: remove .venv and re-run"

# ---- 3. the package and its test dependencies -------------------------------------
constraints=()
if [ "${BRIDGE_NO_CONSTRAINTS:-0}" != 1 ] && [ -f "$ROOT/scripts/constraints.txt" ]; then
    constraints=(-c "$ROOT/scripts/constraints.txt")
fi
want="$(cat pyproject.toml "${constraints[@]:1}" 2>/dev/null | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ] || [ ! -x "$VENV/bin/bridge" ]; then
    log "pip install -e '.[test]'"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${constraints[@]}" -e '.[test]'
    echo "$want" > "$STAMP"
else
    log ".venv is up to date"
fi
log "ready: $("$VENV/bin/python" --version 2>&1) in .venv"
