#!/usr/bin/env bash
# One command: install everything (Debian's chromium for the browser tests, Python packages into ./.venv)
# and run the lint and the whole test suite. Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  # Playwright drives Debian's chromium: browser downloads are not used (and not possible offline).
  sudo_cmd=""
  if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi
bash scripts/setup-env.sh test
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
