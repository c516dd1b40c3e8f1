#!/usr/bin/env bash
# Install, build the artifacts the demo cannot run without, run the demo, then build the rest into ./models.
# The demo replays recorded main-LLM replies (penny_slm/demo.py), so it needs only the encoder heads; the local
# SmolLM2 and the rewriter (most of the build time) come after it: then try `penny-slm demo --llm local`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/penny-slm models build --only research --only tone --only tone-screen
.venv/bin/penny-slm demo
.venv/bin/penny-slm models build
