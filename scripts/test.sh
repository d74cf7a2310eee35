#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy), tests (pytest). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/system-deps.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check hotline_cti simulators benchmarks tests
.venv/bin/mypy
# The real-Asterisk tier (tests/asterisk/test_asterisk_calls.py): build or reuse the sid chroot (needs root; CI is root).
# Its failure does not stop the run: the tests that need the rig then fail, naming what is missing.
bash scripts/asterisk-rig.sh || echo "test.sh: the real-Asterisk rig is unavailable; its tests will fail" >&2
# With arguments: pytest with them, as given. Without: the whole suite, in parallel (pytest-xdist, a test file per
# worker, so a module's own Asterisk, broker or database stays with its tests; most real-Asterisk tests wait on
# audio, not CPU), then the tests marked serial (they drive call load and bound its latency, or saturate the CPU) alone.
if [ $# -gt 0 ]; then exec .venv/bin/pytest "$@"; fi
rc=0
.venv/bin/pytest -n "${HOTLINE_TEST_WORKERS:-3}" --dist loadfile -m "not serial" || rc=$?
.venv/bin/pytest -m serial || { r=$?; [ "$rc" != 0 ] || rc=$r; }
exit "$rc"
