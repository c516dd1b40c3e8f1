#!/usr/bin/env bash
# Install everything, then run the test suite (it builds its own small real model once per session).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
