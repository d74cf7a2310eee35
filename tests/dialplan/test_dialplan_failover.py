"""Controller failover in the generated dialplan: several controllers in order, hagi:// SRV, the stall bound.

What Asterisk does with them is tested on the real Asterisk in tests/asterisk/test_asterisk_failover.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.fastagi import FastAgiServer
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.cli.main import main
from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.dialplan.check import check_directory
from hotline_cti.dialplan.confparse import Step, parse_extensions
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.dialplan_runner import AgiHook, CallResult, DialplanRunner, peer_agi
from tests.paths import REPO

CONFIG = REPO / "merger_config" / "guangxi.yaml"
SENTINEL = f'$["${{{cv.DECIDED}}}" = "{cv.DECIDED_VALUE}"]'


@pytest.fixture(scope="module")
def cfg() -> MergerConfig:
    return load_config(CONFIG).model


def _steps(text: str, context: str, exten: str) -> list[Step]:
    return parse_extensions(text)[context].extensions[exten]


def _agis(steps: list[Step]) -> list[str]:
    return [s.args.split(",", 1)[0] for s in steps if s.app == "AGI"]


def test_hagi_is_used_verbatim_and_tried_in_order(cfg: MergerConfig) -> None:
    opts = RenderOptions(controllers=("10.0.0.1:4573", "hagi://agi.gx.example.cn"))
    text = render_all(cfg, opts)["extensions.conf"]
    assert "; FastAGI controllers (failover order): 10.0.0.1:4573, hagi://agi.gx.example.cn\n" in text
    for pat in ("_X.", "_+X."):
        assert _agis(_steps(text, "hotline-route", pat)) == [
            "agi://10.0.0.1:4573/route",
            "hagi://agi.gx.example.cn/route",
        ]
    assert _agis(_steps(text, "hotline-dispatch", "s")) == ["agi://10.0.0.1:4573/ivr", "hagi://agi.gx.example.cn/ivr"]
    # without --agi-timeout nothing of the stall bound is written
    assert "TIMEOUT(absolute)" not in text and cv.AGI_RESUME not in text
    assert "T" not in parse_extensions(text)["hotline-route"].extensions


@pytest.mark.parametrize(
    "controller",
    [
        "hagi://agi.example.cn:4573",  # a port makes res_agi skip the SRV lookup
        "hagi://agi.example.cn/route",
        "hagi://",
        "agi://10.0.0.1:4573",
        "10.0.0.1",
        "10.0.0.1:0",
        "10.0.0.1:4573/route",
        "10.0.0.1,x:4573",
        "${EVIL}:4573",
        "a b:4573",
    ],
)
def test_bad_controller_forms_are_refused(controller: str) -> None:
    with pytest.raises(ValueError, match=r"is not host:port|is not hagi://"):
        RenderOptions(controllers=(controller,))


def test_ipv6_and_names_are_accepted() -> None:
    assert RenderOptions(controllers=("[::1]:4573", "ctl-2.gx.example.cn:4573", "hagi://agi.gx.example.cn"))


@pytest.mark.parametrize("seconds", [0.0, -1.0, 60.5])
def test_agi_timeout_out_of_range_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="agi timeout"):
        RenderOptions(agi_timeout=seconds)


def test_each_attempt_runs_under_the_timeout_and_resumes_at_its_own_check(cfg: MergerConfig, tmp_path: Path) -> None:
    opts = RenderOptions(controllers=("127.0.0.1:4573", "127.0.0.1:4574"), agi_timeout=1.5)
    files = render_all(cfg, opts)
    text = files["extensions.conf"]
    assert "; each controller may hold a call 1.5 s (TIMEOUT(absolute), then T)\n" in text.split("[", 1)[0]
    for context, exten, script, decided in (
        ("hotline-route", "_X.", "route", "decided"),
        ("hotline-route", "_+X.", "route", "decided"),
        ("hotline-dispatch", "s", "ivr", "redecided"),
    ):
        steps = _steps(text, context, exten)
        agi_at = [i for i, s in enumerate(steps) if s.app == "AGI"]
        assert len(agi_at) == 2
        for n, i in enumerate(agi_at, 1):
            label = f"{script}{n}"
            assert (steps[i - 3].app, steps[i - 3].args) == ("Set", f"{cv.DECIDED}=")
            assert (steps[i - 2].app, steps[i - 2].args) == ("Set", f"{cv.AGI_RESUME}=${{CONTEXT}},${{EXTEN}},{label}")
            assert (steps[i - 1].app, steps[i - 1].args) == ("Set", "TIMEOUT(absolute)=1.5")
            after = steps[i + 1 : i + 4]
            assert [(s.label, s.app, s.args) for s in after] == [
                (label, "Set", "TIMEOUT(absolute)=0"),
                (None, "Set", f"{cv.AGI_RESUME}="),
                (None, "GotoIf", f"{SENTINEL}?{decided}"),
            ]
        # after the last controller: never AGISTATUS, the fallback (or the emergency line's own seats)
        assert not any("AGISTATUS" in s.args for s in steps)
        t = _steps(text, context, "T")
        assert [(s.label, s.app, s.args) for s in t] == [
            (None, "NoOp", "controller silent for 1.5 s: the next one, else the fallback"),
            (None, "GotoIf", f'$["${{{cv.AGI_RESUME}}}" = ""]?over'),
            (None, "Goto", f"${{{cv.AGI_RESUME}}}"),
            ("over", "Hangup", ""),
        ]
    write_all(files, tmp_path)
    assert check_directory(tmp_path, set(known_prompt_ids(load_catalogue(), cfg))) == []


def test_render_cli_takes_the_list_and_the_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["dialplan", "render", str(CONFIG), "-o", str(tmp_path)]
    argv += ["--agi", "10.0.0.1:4573", "--controller", "hagi://agi.gx.example.cn", "--agi-timeout", "2"]
    assert main(argv) == 0
    text = (tmp_path / "extensions.conf").read_text(encoding="utf-8")
    assert _agis(_steps(text, "hotline-route", "_X.")) == [
        "agi://10.0.0.1:4573/route",
        "hagi://agi.gx.example.cn/route",
    ]
    assert "Set(TIMEOUT(absolute)=2)" in text
    capsys.readouterr()
    assert main(["dialplan", "render", str(CONFIG), "-o", str(tmp_path / "x"), "--agi", "hagi://a.cn:1"]) == 2
    assert "hagi://a.cn:1" in capsys.readouterr().err
    assert main(["dialplan", "render", str(CONFIG), "-o", str(tmp_path / "y"), "--agi-timeout", "0"]) == 2
    assert "agi timeout 0 s" in capsys.readouterr().err


# ---- the same dialplan run by the simulated PBX (simulators/dialplan_runner.py) over real FastAGI sessions

NOW = dt.datetime(2021, 9, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
async def controller() -> AsyncIterator[int]:
    server = FastAgiServer(ConfigHolder(CONFIG), clock=lambda: NOW)
    port = await server.start("127.0.0.1", 0)
    yield port
    await server.close()


@pytest.fixture
async def stalled() -> AsyncIterator[int]:
    """A controller that accepts and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield int(server.sockets[0].getsockname()[1])
        for writer in held:
            writer.close()


def route_event(result: CallResult) -> dict[str, str]:
    """The call's last HotlineRoute (other UserEvents, e.g. the recording's, may follow it)."""
    return [e for e in result.events if e.get("UserEvent") == cv.EVENT_ROUTE][-1]


def _runner(cfg: MergerConfig, ports: list[int], agi: AgiHook = peer_agi, keys: tuple[str, ...] = ()) -> DialplanRunner:
    opts = RenderOptions(controllers=tuple(f"127.0.0.1:{p}" for p in ports), agi_timeout=0.3)
    return DialplanRunner(parse_extensions(render_all(cfg, opts)["extensions.conf"]), agi=agi, keys=keys)


async def test_a_stalled_first_controller_is_cut_and_the_second_decides(
    cfg: MergerConfig, controller: int, stalled: int
) -> None:
    expected = decide(Call("12300"), compile_config(cfg), NOW)
    result = await _runner(cfg, [stalled, controller]).run("hotline-inbound", "12300")
    assert result.agi == [("route", "TIMEOUT"), ("route", "SUCCESS")]
    assert (result.kind, result.target) == ("queue", expected.target)
    assert route_event(result)["Action"] == expected.action.value
    assert result.variables["TIMEOUT(absolute)"] == "0"  # nothing left armed for the rest of the call


async def test_every_controller_stalled_the_call_joins_the_general_queue(cfg: MergerConfig, stalled: int) -> None:
    result = await _runner(cfg, [stalled, stalled]).run("hotline-inbound-guilin", "12300")
    assert result.agi == [("route", "TIMEOUT"), ("route", "TIMEOUT")]
    assert (result.kind, result.target) == ("queue", "guilin-general")
    assert route_event(result)["Action"] == cv.FALLBACK_ACTION


async def test_the_menus_second_question_fails_over_too(cfg: MergerConfig, controller: int) -> None:
    """The first controller routes but stalls on ``ivr``: [hotline-dispatch]'s T resumes at its own check."""
    first = 1  # a port only the hook sees: the first controller, healthy for route, stalled on ivr

    async def hook(host: str, port: int, script: str, args: tuple[str, ...], variables: dict[str, str]) -> str:
        if port == first:
            if script == "ivr":
                await asyncio.sleep(60)
            port = controller
        return await peer_agi(host, port, script, args, variables)

    opts = RenderOptions(controllers=(f"127.0.0.1:{first}", f"127.0.0.1:{controller}"), agi_timeout=0.3)
    runner = DialplanRunner(parse_extensions(render_all(cfg, opts)["extensions.conf"]), agi=hook, keys=("1",))
    result = await runner.run("hotline-inbound", "12345")
    assert result.agi == [("route", "SUCCESS"), ("ivr", "TIMEOUT"), ("ivr", "SUCCESS")]
    expected = decide(Call("12345", ivr_choice="1"), compile_config(cfg), NOW)
    assert (result.kind, result.target) == ("queue", expected.target)


def test_deploy_takes_the_same_options(capsys: pytest.CaptureFixture[str]) -> None:
    """deploy renders too: the same list and bound, refused the same way before anything is touched."""
    assert main(["deploy", str(CONFIG), "--dry-run", "--agi", "hagi://a.cn:1"]) == 2
    assert "hagi://a.cn:1" in capsys.readouterr().err
    assert main(["deploy", str(CONFIG), "--dry-run", "--agi-timeout", "61"]) == 2
    said = capsys.readouterr().err
    assert "agi timeout 61 s" in said
    assert main(["dialplan", "render", str(CONFIG), "-o", "/nonexistent/x", "--agi-timeout", "61"]) == 2
    assert capsys.readouterr().err == said  # one rule, one message, whichever command renders
