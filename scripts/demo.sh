#!/usr/bin/env bash
# Install, build the artifacts the demo cannot run without, run the demo, then build the rest into ./models.
# The demo replays recorded main-LLM replies (penny_slm/demo.py), so it needs only the encoder heads; the research
# head comes first as a quick frozen-encoder build (--quick), which the full build after the demo replaces through
# the registry's gate. The local SmolLM2 and the rewriter (most of the build time) come after the demo too: then try
# `penny-slm demo --llm local`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/penny-slm models build --quick --only research --only tone --only tone-screen
.venv/bin/penny-slm demo
.venv/bin/penny-slm models build
