#!/usr/bin/env bash
# Install, build any missing model artifacts into ./models, run the demo on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/penny-slm models build
.venv/bin/penny-slm demo
