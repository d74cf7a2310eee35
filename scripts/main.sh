#!/usr/bin/env bash
# The main job: set up, then hotline-cti demo: check merger_config/, replay Guangxi's busiest hour of a day inside
# its transition (2021-12-14, from the file's cut-overs) through the controller (FastAGI + AMI into SQLite) with a
# live queue table, KPI and merger summary and demo-out/report.html with its merger section (docs/demo.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/hotline-cti demo "$@"
