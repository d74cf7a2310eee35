"""serve's health: the status file the supervisor writes, ``hotline-cti status`` and the wall's tile."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.health import STALE_AFTER, StatusError, read_status, write_status
from hotline_cti.wallboard.hub import Hub
from tests.conftest import SMALL_YAML

SERVICES = {
    "routing": {"pid": 11, "running": True, "since_beat": 0.05, "restarts": 1, "stalls": 1, "last_exit": "stalled"},
    "events": {"pid": 12, "running": True, "since_beat": 0.1, "restarts": 0, "stalls": 0, "last_exit": ""},
}


def test_written_health_reads_back_and_goes_stale(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_status(path, True, SERVICES)
    health = read_status(path)
    assert health.healthy and not health.stale and health.services == SERVICES
    later = read_status(path, now=time.time() + STALE_AFTER + 1)  # the supervisor stopped writing
    assert later.stale and not later.healthy
    write_status(path, False, SERVICES)
    assert not read_status(path).healthy


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        (b"not json", "not a serve status file"),
        (b'{"healthy": true}', "not a serve status file"),
        (b" " * 70_000, "over 65536 bytes"),
    ],
)
def test_unreadable_status_is_an_error_naming_the_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "status.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StatusError, match=message) as info:
        read_status(path)
    assert str(path) in str(info.value)


def test_status_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "status.json"
    write_status(path, True, SERVICES)
    assert main(["status", "--status-file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "serve: healthy" in out and "routing  pid 11" in out and "1 restarts, 1 stalls, last exit: stalled" in out
    write_status(path, False, {**SERVICES, "events": {**SERVICES["events"], "running": False, "pid": None}})
    assert main(["status", "--status-file", str(path), "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["healthy"] is False and body["services"]["events"]["running"] is False
    assert main(["status", "--status-file", str(tmp_path / "nope.json")]) == 2
    assert "error:" in capsys.readouterr().out


def test_the_wall_snapshot_carries_the_controller_health(tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML, encoding="utf-8")
    table = compile_config(load_config(config).model)
    path = tmp_path / "status.json"
    write_status(path, True, SERVICES)
    hub = Hub(table, health=lambda: read_status(path).to_dict())
    assert json.loads(hub.snapshot_json())["controller"]["services"]["routing"]["stalls"] == 1
    assert "controller" not in json.loads(Hub(table).snapshot_json())  # no status file: no tile data
