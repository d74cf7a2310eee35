"""rig_root names what is missing when the real-Asterisk rig cannot be built (fake rig scripts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulators import asterisk
from simulators.asterisk import RigUnavailable, rig_root


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rig.sh"
    path.write_text("#!/usr/bin/env bash\n" + body, encoding="utf-8")
    return path


def test_not_root_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RigUnavailable, match="needs root"):
        rig_root(_script(tmp_path, "exit 0\n"))


def test_debootstrap_failure_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(asterisk, "_can_reach", lambda host, port, timeout=3.0: True)
    script = _script(tmp_path, "echo 'asterisk-rig: debootstrap sid into /x' >&2\necho 'E: boom' >&2\nexit 1\n")
    with pytest.raises(RigUnavailable, match="debootstrap failed"):
        rig_root(script)


def test_no_network_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(asterisk, "_can_reach", lambda host, port, timeout=3.0: False)
    with pytest.raises(RigUnavailable, match="no network to Debian's archive"):
        rig_root(_script(tmp_path, "echo 'debootstrap: cannot fetch' >&2\nexit 1\n"))


def test_a_root_without_asterisk_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    empty = tmp_path / "empty-root"
    empty.mkdir()
    with pytest.raises(RigUnavailable, match="has no /usr/sbin/asterisk"):
        rig_root(_script(tmp_path, f"echo {empty}\n"))
