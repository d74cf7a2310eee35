"""``hotline-cti recordings cleanup``: only old recordings under the recordings dir go; dry run; audited."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.records.actions import ActionRecord
from hotline_cti.storage.recordings import NotServable, servable
from hotline_cti.storage.store import Store
from tests.conftest import SMALL_YAML

DAY = 86400


def _file(path: Path, age_days: float, data: bytes = b"RIFF....WAVE") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age_days * DAY
    os.utime(path, (then, then), follow_symlinks=False)
    return path


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, str, dict[str, Path]]:
    root = tmp_path / "rec"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(SMALL_YAML + f"recording: {{dir: {root}, retention_days: 30}}\n", encoding="utf-8")
    outside = _file(tmp_path / "precious" / "20200101" / "1700000000.1-1.wav", 400)
    files = {
        "old": _file(root / "20250101" / "1700000000.1-1735689600.wav", 40),
        "old_transfer": _file(root / "20250101" / "1700000000.1-1735689700-t9001.wav", 40),
        "old_gsm": _file(root / "20250102" / "1700000000.2-1735776000.gsm", 35),
        "new": _file(root / "20250301" / "1700000000.3-1740787200.wav", 2),
        "stray": _file(root / "20250101" / "notes.txt", 400),
        "top": _file(root / "1700000000.4-1.wav", 400),  # not in a day dir
    }
    link = root / "20250103" / "1700000000.5-1.wav"
    link.parent.mkdir()
    link.symlink_to(outside)
    os.utime(link, (1, 1), follow_symlinks=False)
    (root / "20200101").symlink_to(outside.parent)  # a day dir that is a link
    files["link"], files["outside"] = link, outside
    return cfg, root, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", files


async def _actions(url: str) -> list[ActionRecord]:
    store = await Store.open(url)
    try:
        return await store.actions_between()
    finally:
        await store.close()


def test_dry_run_lists_the_old_recordings_and_deletes_nothing(
    setup: tuple[Path, Path, str, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _root, url, files = setup
    code = main(
        ["recordings", "cleanup", "--config", str(cfg), "--dry-run", "--database", url, "--json", "--by", "ops"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == [str(files["old"]), str(files["old_transfer"]), str(files["old_gsm"])]
    assert out["removed"] == 0 and out["dry_run"] is True
    assert all(p.exists() or p.is_symlink() for p in files.values())
    (row,) = asyncio.run(_actions(url))
    assert (row.actor, row.action, row.result) == ("ops", "recordings:cleanup", "ok")
    assert row.detail.startswith("dry run: 3 files") and "older than 30 days" in row.detail


def test_cleanup_deletes_only_old_recordings_in_day_dirs(
    setup: tuple[Path, Path, str, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, root, url, files = setup
    assert main(["recordings", "cleanup", "--config", str(cfg), "--database", url]) == 0
    gone = {k for k, p in files.items() if not (p.exists() or p.is_symlink())}
    assert gone == {"old", "old_transfer", "old_gsm"}
    assert not (root / "20250102").exists()  # emptied day dir removed; others kept
    assert (root / "20250101").is_dir() and files["outside"].read_bytes() == b"RIFF....WAVE"
    assert "deleted 3 (" in capsys.readouterr().out
    # --older-than overrides the YAML's retention
    assert main(["recordings", "cleanup", "--config", str(cfg), "--database", url, "--older-than", "24h"]) == 0
    assert not files["new"].exists() and files["link"].is_symlink() and files["outside"].exists()
    rows = asyncio.run(_actions(url))
    assert [r.detail.split(" of ")[0] for r in rows] == ["deleted 3 (36 bytes)", "deleted 1 (12 bytes)"]


@pytest.mark.parametrize("bad", ["0h", "-3d", "3w", "1e9d", "99999d", ""])
def test_a_bad_age_is_refused_naming_the_option(
    setup: tuple[Path, Path, str, dict[str, Path]], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _root, url, files = setup
    with pytest.raises(SystemExit) as info:
        main(["recordings", "cleanup", "--config", str(cfg), "--database", url, f"--older-than={bad}"])
    assert info.value.code == 2 and "--older-than" in capsys.readouterr().err
    assert files["old"].exists()


def test_only_a_recording_under_the_dir_is_servable(setup: tuple[Path, Path, str, dict[str, Path]]) -> None:
    _cfg, root, _url, files = setup
    assert servable(root, str(files["old"])) == files["old"]
    refused = {
        "link": str(files["link"]),
        "outside": str(files["outside"]),
        "dotdot": f"{root}/20250101/../../precious/20200101/1700000000.1-1.wav",
        "linked day": f"{root}/20200101/1700000000.1-1.wav",
        "stray": str(files["stray"]),
        "top": str(files["top"]),
        "relative": "20250101/1700000000.1-1735689600.wav",
        "missing": f"{root}/20250101/1700000000.9-1.wav",
        "dir": f"{root}/20250101",
        "passwd": "/etc/passwd",
    }
    for what, path in refused.items():
        with pytest.raises(NotServable):
            servable(root, path)
            pytest.fail(f"{what} was servable")
