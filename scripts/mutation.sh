#!/usr/bin/env bash
# Mutation testing of the routing core (holiday calendars, caller rules and queue diversion included), the
# AGI/AMI protocol parsers, the KPIs and the caller-number masker (a developer tool, not CI).
#
#   bash scripts/mutation.sh                      # every module below, one at a time
#   bash scripts/mutation.sh hotline_cti/core/routing.py hotline_cti/kpi/counts.py
#   MUTATION_JOBS=2 bash scripts/mutation.sh ...  # parallel mutants (default 1: the machine is shared)
#   MUTATION_KEEP_STATS=1 bash scripts/mutation.sh ...  # reuse the last test-to-function links (faster)
#   MUTATION_VENV=.venv-mut bash scripts/mutation.sh ...  # run mutmut from another venv (default .venv)
#   bash scripts/mutation.sh --score [module...]  # print the scores of the last run only
#
# mutmut (installed into $MUTATION_VENV, default .venv, when missing) copies hotline_cti/ under mutants/
# and mutates the copy; its settings, including which test files it may run, are [tool.mutmut] in
# pyproject.toml. The tests run with --no-caches (tests/conftest.py): the routing decision cache, the
# parsed-number memo and the AGI reply memo take no entries, so each test is linked to the code behind
# them. Mutants that cannot change behaviour are listed with a reason in tests/mutation-equivalent.txt and
# left out of the score.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MUTATION_VENV:-.venv}
venv=${venv%/}
if [ "$venv" = .venv ]; then
  bash scripts/bootstrap.sh
elif [ ! -x "$venv/bin/python" ]; then
  # A venv of its own keeps mutmut and its dependencies out of a .venv others share.
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -e '.[dev]'
fi
if ! "$venv/bin/python" -c 'import mutmut' 2>/dev/null; then
  "$venv/bin/python" -m pip install -q 'mutmut==3.8.1'
fi

score_only=0
if [ "${1:-}" = "--score" ]; then
  score_only=1
  shift
fi
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
  modules=(
    hotline_cti/core/routing.py
    hotline_cti/adapters/agi/protocol.py
    hotline_cti/core/table.py
    hotline_cti/core/hours.py
    hotline_cti/core/numbers.py
    hotline_cti/core/prompts.py
    hotline_cti/core/transfer.py
    hotline_cti/core/model.py
    hotline_cti/adapters/ami/protocol.py
    hotline_cti/kpi/counts.py
    hotline_cti/kpi/waits.py
    hotline_cti/kpi/accumulator.py
    hotline_cti/privacy.py
    hotline_cti/core/calendar.py
    hotline_cti/core/callers.py
    hotline_cti/core/diversion.py
    hotline_cti/core/naming.py
    hotline_cti/core/memo.py
    hotline_cti/config/compile.py
  )
fi

if [ "$score_only" = 0 ]; then
  mkdir -p mutants
  # mutmut re-collects which tests reach which function only for tests it has not seen; a test whose body
  # or fixtures changed keeps its old links. Start from fresh links (a few minutes) unless asked not to.
  if [ "${MUTATION_KEEP_STATS:-0}" != 1 ]; then
    rm -f mutants/mutmut-stats.json
  fi
  for module in "${modules[@]}"; do
    dotted=${module%.py}
    dotted=${dotted//\//.}
    echo "== mutmut: $module" >&2
    start=$(date +%s)
    # mutmut's progress line is redrawn in place; the log keeps it, the terminal gets the outcome.
    if ! "$venv/bin/mutmut" run --max-children "${MUTATION_JOBS:-1}" "$dotted.*" >"mutants/$(basename "$dotted").log" 2>&1; then
      tail -c 2000 "mutants/$(basename "$dotted").log" >&2
      echo "mutmut failed on $module (log: mutants/$(basename "$dotted").log)" >&2
      exit 1
    fi
    echo "   $(($(date +%s) - start)) s" >&2
  done
fi

MUTMUT="$venv/bin/mutmut" "$venv/bin/python" - "${modules[@]}" <<'EOF'
"""Each module's score: killed / (mutants - equivalent - not checked), and the survivors to look at."""

import json
import os
import sys
from pathlib import Path

KILLED = {1, 3, 36, 37, 24, -24, 152, 255}  # failed test, pytest error, timeouts, caught by the type checker
equivalent: dict[str, str] = {}
for n, line in enumerate(Path("tests/mutation-equivalent.txt").read_text(encoding="utf-8").splitlines(), 1):
    if not line.strip() or line.startswith("#"):
        continue
    name, _, reason = line.partition(" ")
    if not reason.strip():
        sys.exit(f"tests/mutation-equivalent.txt:{n}: {name} needs a one-line reason")
    equivalent[name] = reason.strip()

print(f"{'module':40} {'mutants':>7} {'killed':>6} {'surv.':>5} {'equiv.':>6} {'no test':>7} {'score':>7}")
failing = False
for module in sys.argv[1:]:
    meta = Path("mutants") / (module + ".meta")
    if not meta.exists():
        print(f"{module:40} (not run)")
        continue
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    checked = {k: v for k, v in codes.items() if v is not None}
    killed = [k for k, v in checked.items() if v in KILLED]
    equiv = [k for k, v in checked.items() if v not in KILLED and k in equivalent]
    left = sorted((k for k, v in checked.items() if v not in KILLED and k not in equivalent), key=lambda k: (len(k), k))
    no_tests = [k for k in left if checked[k] in (5, 33)]
    scored = len(checked) - len(equiv)
    score = 100.0 * len(killed) / scored if scored else 100.0
    failing |= score < 95.0
    print(
        f"{module:40} {len(codes):7} {len(killed):6} {len(left):5} {len(equiv):6} {len(no_tests):7} {score:6.1f}%"
        + ("" if len(checked) == len(codes) else f"  ({len(codes) - len(checked)} not checked)")
    )
    for name in left:
        print(f"    survived: {name}  ({os.environ['MUTMUT']} show {name})")
    stale = [k for k in equivalent if k.startswith(module[:-3].replace("/", ".") + ".") and k not in codes]
    for name in stale:
        print(f"    listed as equivalent but no longer a mutant: {name}")
print("target: at least 95% of the non-equivalent mutants killed in every module" + ("; NOT MET" if failing else "; met"))
EOF
