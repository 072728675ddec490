#!/usr/bin/env bash
# One command: install everything (Python packages into ./.venv) and run the lint and the whole test suite.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh test
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
