"""What the test harness asks of the host: free loopback ports and Debian packages.

Tests and simulators start their own Asterisk, mosquitto, PostgreSQL and SIPp on ports the kernel hands out,
and install a missing Debian package themselves when run as root (``scripts/system-deps.sh`` installs them all
up front for ``scripts/test.sh``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
from pathlib import Path

# Parallel test workers may each find a package missing: one apt-get at a time, the others wait and find it there.
APT_LOCK = Path("/run/lock/hotline-cti-apt.lock")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A free 127.0.0.1 port (TCP by default, UDP with ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PackageUnavailable(RuntimeError):
    """A Debian package a test needs is missing and cannot be installed here."""


def install_debian_packages(*packages: str) -> None:
    """``apt-get update`` and ``apt-get install`` ``packages``.

    Raises :class:`PackageUnavailable` naming the packages when not root, apt-get is missing or it fails.
    """
    names = " ".join(packages)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PackageUnavailable(f"missing Debian packages ({names}): run scripts/system-deps.sh as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    APT_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with APT_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise PackageUnavailable(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
