#!/usr/bin/env bash
# The main job: set up, then run hotline-cti's demo over the shipped merger lists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/hotline-cti demo "$@"
