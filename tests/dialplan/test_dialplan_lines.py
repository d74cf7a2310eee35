"""Every line and alias of guangxi.yaml and yuncheng.yaml, through the real FastAGI server and the golden dialplan.

For each number, before, during and after its transition window (before and after the cut-over when
it has no window), a call runs through the committed extensions.conf in the simulated PBX; the
route session goes over TCP to one :class:`FastAgiServer` per region. The commands it received and
where the call ended must be what ``decide()`` says for that moment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.agi.scripts import decision_variables, set_vars
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Action, Call, Decision
from hotline_cti.core.numbers import dialled_forms
from hotline_cti.core.routing import decide
from hotline_cti.core.table import LinePlan, RoutingTable
from hotline_cti.dialplan.confparse import Context, parse_extensions
from simulators.agi_peer import PeerChannel, reply_to
from simulators.dialplan_runner import CallResult, DialplanRunner, peer_agi
from tests.paths import REPO
from tests.seed_tables import GUANGXI, YUNCHENG, SeedRegion

CALLER = "13812345678"  # a mobile: the caller's number names no city
MONTH = dt.timedelta(days=30)


def moments(line: LinePlan, table: RoutingTable) -> list[dt.datetime]:
    """Before, inside and after the line's transition window (or its cut-over), at 10:00 local time."""

    def at(epoch: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(epoch, table.timezone).replace(hour=10, minute=0, second=0)

    if line.window_start is not None and line.window_end is not None:
        return [
            at(line.window_start) - MONTH,
            at((line.window_start + line.window_end) / 2),
            at(line.window_end) + MONTH,
        ]
    if line.cutover is not None:
        return [at(line.cutover) - MONTH, at(line.cutover) + MONTH]
    return [dt.datetime(2030, 6, 1, 10, tzinfo=table.timezone)]


def dialled(number: str, line: LinePlan, area: str) -> list[str]:
    """The local and national forms (a short code behind the region's first area code)."""
    return dialled_forms(number, line.landline_area or area)[:2]


def check_route_session(commands: list[str], d: Decision, where: str) -> None:
    """The route session set the decision's variables and the sentinel last, and played nothing.

    The commands are replayed on a fresh simulated channel, so the check is what Asterisk would
    hold, however the server grouped the variables (SET VARIABLE or one EXEC MSet).
    """
    channel = PeerChannel({})
    for command in commands:
        reply_to(channel, command, [False])
    assert channel.assigned == [*decision_variables(d), (cv.DECIDED, "1")], where
    assert not [c for c in commands if c.startswith(("STREAM FILE", "GET DATA"))], where  # Asterisk plays
    # as few round trips as MSet allows: one, unless a value needs a SET VARIABLE of its own
    assert len(commands) == len(set_vars([*decision_variables(d), (cv.DECIDED, "1")])), where


def expected_sounds(d: Decision) -> list[str]:
    """What the dialplan plays for ``d`` before it queues, dials or releases (nobody presses a key)."""
    prompts = [cv.sound(p) for p in d.prompts]
    if not d.menu:
        return prompts
    menu, again = (
        [*prompts, cv.sound("emergency-hint"), cv.sound("menu-main")],
        [cv.sound("invalid-choice"), cv.sound("menu-main")],
    )
    return menu + again * 2


def expected_end(d: Decision) -> tuple[str, str | None]:
    """Where the generated dialplan leaves the call when queues and dials just hold it."""
    if d.action is Action.QUEUE:
        return "queue", d.target
    if d.action in (Action.DEPARTMENT, Action.SUBCENTRE, Action.EMERGENCY):
        return ("dial", d.dial) if d.dial else ("queue", d.overflow)
    return "hangup", None


@pytest.mark.parametrize("seed", [GUANGXI, YUNCHENG], ids=lambda s: s.config)
async def test_every_line_through_server_and_dialplan(seed: SeedRegion) -> None:
    path = REPO / "merger_config" / seed.config
    holder = ConfigHolder(path)
    table, model = holder.table, load_config(path).model
    region = seed.config.removesuffix(".yaml")
    area = sorted(model.cities, key=lambda c: c.id)[0].area_code
    clock = [dt.datetime(2030, 1, 1, tzinfo=dt.UTC)]
    server = FastAgiServer(holder, limits=Limits(session=10.0), clock=lambda: clock[0])
    port = await server.start("127.0.0.1", 0)
    text = (REPO / "dialplans" / region / "extensions.conf").read_text(encoding="utf-8")
    contexts = parse_extensions(text.replace("127.0.0.1:4573", f"127.0.0.1:{port}"))

    # moment -> numbers dialled at that moment (the server's clock is one value per batch)
    batches: dict[dt.datetime, list[str]] = defaultdict(list)
    numbers: set[str] = set()
    for hotline in model.hotlines:
        line = table.lines[hotline.number]
        for number in (hotline.number, *hotline.aliases):
            numbers.add(number)
            for now in moments(line, table):
                batches[now] += dialled(number, line, area)
    actions: dict[str, int] = defaultdict(int)
    try:
        checked = 0
        for now, batch in sorted(batches.items()):
            clock[0] = now
            runs = await asyncio.gather(*(_call(contexts, form) for form in batch))
            for form, (result, commands) in zip(batch, runs, strict=True):
                d = decide(Call(form, caller=CALLER), table, now)
                where = f"{region} {form} at {now:%Y-%m-%d}: {d.action} {d.target}"
                check_route_session(commands[0], d, where)
                assert result.played == expected_sounds(d), where
                actions[d.action.value] += 1
                if d.menu:  # the 12345 menu re-decides; nobody pressed a key
                    d = decide(Call(form, caller=CALLER, ivr_choice="0"), table, now)
                assert (result.kind, result.target) == expected_end(d), where
                routes = [e for e in result.events if e["UserEvent"] == "HotlineRoute"]
                event = routes[-1]  # the last HotlineRoute is the one that counts
                assert (event["Action"], event["Dialled"]) == (d.action.value, form), where
                checked += 1
    finally:
        await server.close()
    assert server.active == 0 and server.failed == 0
    seed_numbers = {n for s in seed.lines for n in (s.number, *s.aliases)}
    assert seed_numbers <= numbers, f"lines not run: {sorted(seed_numbers - numbers)}"
    assert checked == sum(len(b) for b in batches.values())
    assert {"queue", "department", "retired", "emergency"} <= set(actions)  # every phase was really reached


async def _call(contexts: dict[str, Context], form: str) -> tuple[CallResult, list[list[str]]]:
    """Run one call; the commands each AGI session received, per session."""
    sessions: list[list[str]] = []

    async def agi(host: str, port: int, script: str, args: tuple[str, ...], variables: dict[str, str]) -> str:
        commands: list[str] = []
        sessions.append(commands)
        return await peer_agi(host, port, script, args, variables, commands=commands)

    runner = DialplanRunner(contexts, agi=agi)
    result = await runner.run("hotline-inbound", form, {"CALLERID(num)": CALLER})
    return result, sessions
