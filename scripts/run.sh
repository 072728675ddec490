#!/usr/bin/env bash
# One command: install, seed the demo store (SQLite + local folder in ./tracker-data) from
# sample_images/, and start the dashboard. Usage: bash scripts/run.sh [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/tracker demo --accounts
exec .venv/bin/tracker serve "$@"
