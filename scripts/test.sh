#!/usr/bin/env bash
# Install everything (dev extras included) and run the checks: ruff, mypy, then the whole pytest suite
# (slow tests with the real model and browser tests included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# Running the checks must leave the checkout as it found it (issue 11): no tracked file changed, no
# untracked file outside .gitignore. On a fresh clone (CI) that means `git status --porcelain` stays empty.
tree_state() { git status --porcelain 2>/dev/null; git diff 2>/dev/null | sha256sum; }
before=$(tree_state)
bash scripts/install.sh --dev
export HF_HUB_OFFLINE=1
# A throwaway PostgreSQL on 127.0.0.1 (and Debian's nginx) for the audit-store and replica tests; stopped on exit.
services_dir=$(mktemp -d /tmp/faqbot-services.XXXXXX)
trap 'bash scripts/services.sh stop "$services_dir"' EXIT
services_env=$(bash scripts/services.sh start "$services_dir")
eval "$services_env"
.venv/bin/ruff check bot tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
after=$(tree_state)
if [ "$before" != "$after" ]; then
  echo "test: the run changed the checkout (a tracked file or an untracked file outside .gitignore):" >&2
  git status --porcelain >&2
  exit 1
fi
