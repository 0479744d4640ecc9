#!/usr/bin/env bash
# Install faqbot and serve the chat UI + JSON API on the default corpus (http://127.0.0.1:7860/).
# Extra arguments go to `faqbot serve` (e.g. --port 8080 --root-path /dosing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/faqbot serve "$@"
