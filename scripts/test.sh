#!/usr/bin/env bash
# Install everything, lint and type-check, build the docs, then run the test suite (it builds its own small real
# models and runs the docs' examples).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
.venv/bin/ruff check penny_slm tests docs
.venv/bin/mypy
SITE=$(mktemp -d)  # the docs site: built in strict mode (broken links, missing references fail), never committed
.venv/bin/mkdocs build --strict --quiet --site-dir "$SITE"
rm -rf "$SITE"
.venv/bin/python -m pytest "$@"
