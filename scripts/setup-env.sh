#!/usr/bin/env bash
# Create ./.venv (if missing) and install the project into it, editable, with the given extras.
# Used by run.sh and test.sh; safe to run again (pip skips what is already there).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
else
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
fi
