#!/usr/bin/env bash
# Debian packages the tests use for real parts: espeak-ng + sox (prompt audio), mosquitto (MQTT), postgresql (initdb), chromium +
# chromium-driver + a CJK font (wallboard browser test).
set -euo pipefail
need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)  # wallboard browser test
command -v chromedriver >/dev/null || need+=(chromium-driver)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)  # Chinese in screenshots
command -v sipp >/dev/null || need+=(sip-tester)  # SIPp scenario check (simulators/sipp)
command -v systemd-analyze >/dev/null || need+=(systemd)  # systemd-analyze verify of the PBX host's unit
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing Debian packages: ${need[*]} (run as root to install)" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
