#!/usr/bin/env bash
# The real-Asterisk test tier: a Debian sid chroot with Asterisk 22 (Debian 12 has no asterisk package).
# Built once and cached outside the work tree (HOTLINE_ASTERISK_ROOT, default /var/cache/hotline-cti/asterisk-sid);
# safe to run again: it only mounts /proc and /dev when they are not mounted. Needs root (CI is root).
# Prints the chroot's path as its last line. docs/asterisk.md explains the rig.
set -euo pipefail
ROOT=${HOTLINE_ASTERISK_ROOT:-/var/cache/hotline-cti/asterisk-sid}
MIRROR=${HOTLINE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=(asterisk asterisk-modules asterisk-config asterisk-core-sounds-en-gsm)
stamp="$ROOT/.hotline-rig-ready"

if [ "$(id -u)" != 0 ]; then
  echo "asterisk-rig: needs root to debootstrap and chroot (the real-Asterisk tests run as root, as CI does)" >&2
  exit 1
fi

# One build at a time (parallel test workers may all ask for the rig): the others wait, then reuse it.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9

if [ ! -f "$stamp" ]; then
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  tmp="$ROOT.partial"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$ROOT")"
  echo "asterisk-rig: debootstrap sid into $tmp (about 30 s)" >&2
  debootstrap --variant=minbase sid "$tmp" "$MIRROR" >/dev/null
  # No service starts inside the chroot while packages install.
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
  chmod +x "$tmp/usr/sbin/policy-rc.d"
  mount -t proc proc "$tmp/proc"
  mount --bind /dev "$tmp/dev"
  trap 'umount "$tmp/proc" "$tmp/dev" 2>/dev/null || true' EXIT
  # sid's index is older than its Valid-Until on the archive: apt refuses it without this option.
  chroot "$tmp" apt-get -o Acquire::Check-Valid-Until=false update -qq
  chroot "$tmp" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  umount "$tmp/proc" "$tmp/dev"
  trap - EXIT
  chroot "$tmp" /usr/sbin/asterisk -V > "$tmp/.hotline-rig-version"
  touch "$tmp/.hotline-rig-ready"
  rm -rf "$ROOT"
  mv "$tmp" "$ROOT"
fi

# The chroot shares the host's hostname but not its /etc/hosts: without the name, Asterisk's
# ast_find_ourip (an outgoing PJSIP call's RTP) logs getaddrinfo("<host>") and A.ROOT-SERVERS.NET errors.
host=$(hostname)
grep -qs "localhost" "$ROOT/etc/hosts" || printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >> "$ROOT/etc/hosts"
grep -qsw -- "$host" "$ROOT/etc/hosts" || printf '127.0.1.1 %s\n' "$host" >> "$ROOT/etc/hosts"

mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
echo "$ROOT"
