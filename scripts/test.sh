#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy), tests (pytest). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/system-deps.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check hotline_cti simulators benchmarks tests
.venv/bin/mypy
exec .venv/bin/pytest "$@"
