"""Classic AGI: the ``hotline-cti-agi`` entry point as a subprocess over pipes, Asterisk's side played here."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.scripts import decision_variables
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from simulators.agi_peer import PeerChannel, run_classic_peer
from tests.paths import REPO

GUANGXI = REPO / "merger_config/guangxi.yaml"
CALLER = {"agi_callerid": "13812345678", "agi_calleridname": "张三", "agi_uniqueid": "1700000000.9"}


def start(*argv: str, config: Path | None = GUANGXI, via_env: bool = False) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_CTI_CONFIG"}
    args = list(argv)
    if config is not None and via_env:
        env["HOTLINE_CTI_CONFIG"] = str(config)
    elif config is not None:
        args = ["--config", str(config), *args]
    cmd = [sys.executable, "-m", "hotline_cti.cli.agi_cmd", *args]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def session(script: str, args: Sequence[str], channel: PeerChannel, **kw: object) -> tuple[str, int, str, PeerChannel]:
    """Run one classic session: (AGISTATUS, exit code, stderr, channel)."""
    process = start(script, *args, **kw)  # type: ignore[arg-type]
    try:
        status = run_classic_peer(process, script, channel, args=args)
        code = process.wait(timeout=30)
        assert process.stderr is not None
        return status, code, process.stderr.read().decode(), channel
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def expected_variables(dialled: str, city: str | None = None) -> dict[str, str]:
    table = compile_config(load_config(GUANGXI).model)
    return dict(
        decision_variables(decide(Call(dialled, caller="13812345678", city=city), table, dt.datetime.now(dt.UTC)))
    )


@pytest.mark.parametrize("via_env", [False, True])
def test_route_sets_the_decision_and_the_sentinel_last(via_env: bool) -> None:
    status, code, stderr, channel = session("route", ["12348", ""], PeerChannel(dict(CALLER)), via_env=via_env)
    assert (status, code) == ("SUCCESS", 0), stderr
    assert channel.assigned[-1] == (cv.DECIDED, "1") and cv.DECIDED in channel.commands[-1]
    del channel.variables[cv.DECIDED]
    assert channel.variables == expected_variables("12348")
    assert channel.variables[cv.ACTION] == "department"
    assert "13812345678" not in stderr and "张三" not in stderr  # pyst2's environment dump is dropped


def test_route_plays_nothing_so_a_missing_prompt_cannot_fail_it() -> None:
    status, code, _, channel = session("route", ["12300", ""], PeerChannel(dict(CALLER), sounds=frozenset()))
    assert (status, code) == ("SUCCESS", 0) and len(channel.commands) == 1
    assert channel.variables[cv.DECIDED] == "1" and channel.variables[cv.ACTION] == "retired"
    assert channel.variables[cv.PROMPTS] == "hotline/retired-12300"  # for the dialplan's Playback()


@pytest.mark.parametrize("sighup", [True, False])
def test_caller_gone_at_the_first_command_still_leaves_the_decision(sighup: bool) -> None:
    """res_agi runs the command in hand when the caller goes (with or without AGISIGHUP): one MSet, done."""
    process = start("route", "12300", "")
    try:
        channel = PeerChannel(dict(CALLER), hangup_after=0)
        status = run_classic_peer(process, "route", channel, args=["12300", ""], sighup=sighup)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert status == "HANGUP" and channel.variables[cv.DECIDED] == "1"
    assert len(channel.commands) == 1 and channel.commands[0].startswith("EXEC MSet ")
    del channel.variables[cv.DECIDED]
    assert channel.variables == expected_variables("12300")


def test_ivr_decides_from_the_menu_key_and_the_survey_is_gone() -> None:
    _, code, _, channel = session("ivr", ["077312345", "", "2", ""], PeerChannel(dict(CALLER)))
    assert code == 0 and channel.variables[cv.IVR_CHOICE] == "2" and len(channel.commands) == 1
    assert channel.variables[cv.ACTION] == "queue" and channel.variables[cv.DECIDED] == "1"
    table = compile_config(load_config(GUANGXI).model)
    menu = decide(Call("077312345", caller="13812345678", ivr_choice="2"), table, dt.datetime.now(dt.UTC))
    assert channel.variables[cv.TARGET] == menu.target
    _, code, stderr, channel = session("survey", ["1700000000.9"], PeerChannel(dict(CALLER), dtmf="3"))
    assert code == 2 and "invalid choice: 'survey'" in stderr and channel.commands == []


def test_bad_or_missing_config_sends_nothing_so_the_dialplan_falls_back(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("region: [\n", encoding="utf-8")
    status, code, stderr, channel = session("route", ["12345", ""], PeerChannel(dict(CALLER)), config=bad)
    assert code == 1 and "bad.yaml:" in stderr
    assert channel.commands == [] and status == "SUCCESS"  # Asterisk: nothing set, no sentinel
    status, code, stderr, channel = session("route", ["12345", ""], PeerChannel(dict(CALLER)), config=None)
    assert code == 2 and "HOTLINE_CTI_CONFIG" in stderr and channel.commands == []


def test_console_script_is_declared() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("hotline-cti-agi") == "hotline_cti.cli.agi_cmd:console_main"
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'hotline-cti-agi = "hotline_cti.cli.agi_cmd:console_main"' in pyproject
