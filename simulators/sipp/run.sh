#!/usr/bin/env bash
# Play a scenario's call mix as real SIP calls with SIPp (Debian package sip-tester) against an Asterisk
# running our generated dialplan. ONLY point it at a PBX you own: it places real calls. Not run in CI.
#
#   simulators/sipp/run.sh SCENARIO [HOST[:PORT]] [--hours 9-10] [--seed N] [--speed N] [--max N] [--bind IP]
#
# HOST defaults to 127.0.0.1:5060. The calls are the scenario's own arrivals (hotline-cti simulate
# --record), numbers and hold times included; --speed N places them N times faster than the scenario's
# rate and holds them N times shorter (default 1), --max caps the number of calls per SIPp instance,
# --bind is SIPp's local address (-i; default 127.0.0.1). Two SIPp instances run side by side:
# uac_line.xml for dialled lines, uac_12345_menu.xml for 12345 callers who press a menu key 2 s
# into the welcome (keys count during every menu prompt).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ $# -ge 1 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
scenario="$1"; shift
target="127.0.0.1:5060"
if [ $# -ge 1 ] && [ "${1#--}" = "$1" ]; then target="$1"; shift; fi
hours="9-10"; seed=0; speed=1; max=""; bind=127.0.0.1
while [ $# -gt 0 ]; do
  case "$1" in
    --hours) hours="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --speed) speed="$2"; shift 2 ;;
    --max) max="$2"; shift 2 ;;
    --bind) bind="$2"; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v sipp >/dev/null || { echo "run.sh: sipp not found (apt-get install sip-tester)" >&2; exit 1; }
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM
"$py" -m hotline_cti.cli.main simulate "$scenario" --hours "$hours" --seed "$seed" --record "$work/trace.jsonl" >/dev/null
read -r lines menus rate_line rate_menu < <("$py" - "$work" "$hours" "$speed" <<'PY'
import sys
from simulators.trace import read_trace, write_sipp_injection
work, hours, speed = sys.argv[1], sys.argv[2], float(sys.argv[3])
start, end = (int(h) for h in hours.split("-"))
_, arrivals = read_trace(f"{work}/trace.jsonl")
n_line, n_menu = write_sipp_injection(arrivals, f"{work}/line.csv", f"{work}/menu.csv", menu_ms=2000, speed=speed)
seconds = max((end - start) % 24 or 24, 1) * 3600 / speed
print(n_line, n_menu, f"{n_line / seconds:.4f}", f"{n_menu / seconds:.4f}")
PY
)
echo "calls: $lines line calls at $rate_line/s, $menus 12345 menu calls at $rate_menu/s, to $target"
play() {  # xml csv count rate
  local m="$3"; [ -n "$max" ] && [ "$max" -lt "$m" ] && m="$max"
  [ "$m" -gt 0 ] || return 0
  # -abortunexp off: a BYE landing between two waits of the hold loop is resent by the PBX and taken then
  sipp -sf "$here/$1" -inf "$work/$2" -i "$bind" -default_behaviors -abortunexp -m "$m" -r "$4" -rp 1000 -l 100000 -nostdin -trace_stat \
    -stf "$work/$1.stat.csv" "$target" >"$work/$1.log" 2>&1 &
  pids+=($!)
}
play uac_line.xml line.csv "$lines" "$rate_line"
play uac_12345_menu.xml menu.csv "$menus" "$rate_menu"
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
pids=()
for f in "$work"/*.log; do echo "== $(basename "$f" .log)"; grep -E "Successful call|Failed call" "$f" | tail -2; done
exit "$status"
