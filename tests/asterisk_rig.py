"""Fixtures of the real-Asterisk tier: the sid chroot built once per session (scripts/asterisk-rig.sh).

Where the rig cannot be built (not root, no network to Debian's archive, debootstrap failed ...)
every test that needs it FAILS with the reason: the tier is never skipped silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.asterisk import RigUnavailable, rig_root


@pytest.fixture(scope="session")
def asterisk_root() -> Path:
    """The chroot with Asterisk 22 (built on first use, then reused from its cache)."""
    try:
        return rig_root()
    except RigUnavailable as exc:
        pytest.fail(f"real-Asterisk rig unavailable: {exc}", pytrace=False)
