#!/usr/bin/env bash
# Install everything, lint and type-check, then run the test suite (it builds its own small real models).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
.venv/bin/ruff check penny_slm tests
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
