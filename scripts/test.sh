#!/usr/bin/env bash
# Install everything (dev extras included) and run the checks: ruff, mypy, then the whole pytest suite
# (slow tests with the real model and browser tests included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
export HF_HUB_OFFLINE=1
.venv/bin/ruff check bot tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
