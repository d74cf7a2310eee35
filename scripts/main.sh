#!/usr/bin/env bash
# The main job: set up, then hotline-cti demo: check merger_config/, replay Guangxi's busiest hour through the
# controller (FastAGI + AMI into SQLite) with a live queue table, KPI summary and demo-out/report.html (docs/demo.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/hotline-cti demo "$@"
