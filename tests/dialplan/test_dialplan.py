"""Generated Asterisk files: golden files, static checks, the parser and dialled forms."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.cli.main import main
from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Action, Call
from hotline_cti.core.numbers import dialled_forms, is_short_code
from hotline_cti.core.routing import EXPERT_DIGIT, MENU_QUEUES, decide
from hotline_cti.core.table import LinePlan, RoutingTable
from hotline_cti.dialplan.check import check_directory
from hotline_cti.dialplan.confparse import (
    ConfSyntaxError,
    Context,
    find_extension,
    match_pattern,
    parse_extensions,
    parse_sections,
)
from hotline_cti.dialplan.extensions import fallback_queues, inbound_numbers
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import FILES, render_all, write_all
from hotline_cti.dialplan.transfer_policy import build_policy
from tests.paths import REPO

REGIONS = sorted(p.name for p in (REPO / "dialplans").iterdir() if p.is_dir())

MINI = """\
region: {id: gx, name: 广西, level: province}
cities:
  - {id: nanning, name: 南宁, area_code: "0771"}
  - {id: guilin, name: 桂林, area_code: "0773"}
centres:
  - {id: gx, name: 自治区12345}
  - {id: guilin, name: 桂林12345, city: guilin}
queues:
  - {id: general, name: 综合}
  - {id: l12315, name: 12315, overflow: general}
expert_groups:
  - {id: e12315, name: 市场监管专家}
subcentres:
  - {id: tax, name: 税务, scope: province, dial: PJSIP/12366@tax}
hotlines:
  - {number: 12300, name: 电信申诉, unit: 通信管理局, mode: merge, cutover: 2021-08-31}
  - {number: 12315, name: 市场监管, unit: 市场监管局, mode: parallel, queue: l12315, expert: e12315}
  - {number: 12366, name: 税务, unit: 税务局, mode: subcentre, subcentre: tax, cutover: 2021-07-31}
  - {number: 2666110, name: 供电, unit: 供电局, mode: merge, city: guilin, cutover: 2021-08-31}
  - {number: 110, name: 报警, unit: 公安, mode: transfer}
"""


def _model(tmp_path: Path) -> object:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    return load_config(path).model


def test_regions_are_shipped() -> None:
    assert {"guangxi", "yuncheng", "yongzhou"} <= set(REGIONS)


@pytest.mark.parametrize("region", REGIONS)
def test_golden_files_match_the_yaml(region: str, tmp_path: Path) -> None:
    config = REPO / "merger_config" / f"{region}.yaml"
    assert main(["dialplan", "render", str(config), "-o", str(tmp_path)]) == 0
    for name in FILES:
        fresh = (tmp_path / name).read_bytes()
        golden = (REPO / "dialplans" / region / name).read_bytes()
        assert fresh == golden, (
            f"dialplans/{region}/{name} drifted from merger_config/{region}.yaml; regenerate with "
            f"`hotline-cti dialplan render merger_config/{region}.yaml -o dialplans/{region}/`"
        )


@pytest.mark.parametrize("region", REGIONS)
def test_golden_files_pass_the_static_checks(region: str) -> None:
    model = load_config(REPO / "merger_config" / f"{region}.yaml").model
    prompts = set(known_prompt_ids(load_catalogue(), model))
    assert check_directory(REPO / "dialplans" / region, prompts) == []


def test_render_is_deterministic_and_has_no_timestamp(tmp_path: Path) -> None:
    model = _model(tmp_path)
    first, second = render_all(model), render_all(model)  # type: ignore[arg-type]
    assert first == second
    assert "2026" not in first["extensions.conf"]


def test_inbound_covers_every_dialled_form(tmp_path: Path) -> None:
    forms = inbound_numbers(_model(tmp_path))  # type: ignore[arg-type]
    for number in ("12345", "12300", "12315", "110"):
        for prefix in ("", "0771", "0773", "+86771", "+86773", "0086771", "0086773"):
            assert forms[prefix + number] in (number,)
    # a landline only with its own area code
    assert forms["2666110"] == "2666110" and forms["07732666110"] == "2666110"
    assert "07712666110" not in forms


def test_extensions_branch_on_the_sentinel_and_fall_back(tmp_path: Path) -> None:
    files = render_all(_model(tmp_path), RenderOptions(controllers=("10.0.0.1:4573", "10.0.0.2:4573")))  # type: ignore[arg-type]
    contexts = parse_extensions(files["extensions.conf"])
    steps = contexts["hotline-route"].extensions["_X."]
    apps = [(s.app, s.args) for s in steps]
    assert ("Set", "AGIEXITONHANGUP=yes") in apps
    agis = [a for a in apps if a[0] == "AGI"]
    assert [a[1].split("/")[2] for a in agis] == ["10.0.0.1:4573", "10.0.0.2:4573"]
    gotoifs = [a[1] for a in apps if a[0] == "GotoIf"]
    sentinel = f'"${{{cv.DECIDED}}}" = "{cv.DECIDED_VALUE}"'
    assert [sentinel in g for g in gotoifs] == [True, True, False]
    assert gotoifs[2] == f'$["${{{cv.ACTION}}}" = "emergency"]?decided'
    assert not any("AGISTATUS" in a[1] for a in apps)
    undecided = next(i for i, s in enumerate(steps) if s.label == "decided") - 1
    assert steps[undecided].app == "Goto" and steps[undecided].args.startswith("hotline-fallback")
    # decided: the HotlineRoute event for call records, then the dispatch
    assert [s.app for s in steps[undecided + 1 :]] == ["UserEvent", "Goto"]
    assert steps[-2].args.startswith("HotlineRoute,CallId: ${HOTLINE_CALL_ID},Dialled: ${HOTLINE_DIALLED},")
    assert steps[-1].args == "hotline-dispatch,s,1"
    fallback = [(s.app, s.args) for s in contexts["hotline-fallback"].extensions["s"]]
    # the decided centre, else the trunk's or dialled area's city's, else the region's: its general queue
    assert fallback[:3] == [
        ("ExecIf", '$["${HOTLINE_CENTRE}" = ""]?Set(HOTLINE_CENTRE=${HOTLINE_FALLBACK_CENTRE})'),
        ("ExecIf", '$["${HOTLINE_CENTRE}" = ""]?Set(HOTLINE_CENTRE=gx)'),
        ("Set", "HOTLINE_TARGET=${HOTLINE_CENTRE}-general"),
    ]
    assert ("Queue", "${HOTLINE_TARGET},tcF(hotline-threeway^agent^1)b(hotline-agent-setup^s^1)") in fallback
    guilin = contexts["hotline-inbound-guilin"].extensions["_X."]
    assert ("Set", "HOTLINE_FALLBACK_CENTRE=guilin") in [(s.app, s.args) for s in guilin]
    emergency = contexts["hotline-emergency"].extensions["s"]
    assert not any(s.app == "Queue" for s in emergency)


def test_queues_conf_has_every_queue_with_autofill(tmp_path: Path) -> None:
    sections = {s.name: s for s in parse_sections(render_all(_model(tmp_path))["queues.conf"])}  # type: ignore[arg-type]
    expected = {
        "gx-general",
        "gx-l12315",
        "gx-expert-e12315",
        "guilin-general",
        "guilin-l12315",
        "guilin-expert-e12315",
    }
    assert set(sections) - {"general"} == expected
    assert all(sections[name].get("autofill") == "yes" for name in expected)
    assert sections["gx-general"].get("wrapuptime") == "5"


def test_features_have_one_key_transfers(tmp_path: Path) -> None:
    sections = {s.name: s for s in parse_sections(render_all(_model(tmp_path))["features.conf"])}  # type: ignore[arg-type]
    assert sections["featuremap"].get("atxfer") == "*2"
    assert sections["featuremap"].get("blindxfer") == "#1"
    xfer = parse_extensions(render_all(_model(tmp_path))["extensions.conf"])["hotline-xfer"].extensions  # type: ignore[arg-type]
    assert xfer["b110"][0].args == "${BRIDGEPEER},hotline-onekey,110,1"
    # *3: only the caller side is redirected (the agent's own leg follows through Dial/Queue option F:
    # redirecting itself inside the feature's Gosub broke app_stack); the target is called into the conference
    t3 = xfer["t9001"]
    assert [s.args.split(",")[1] for s in t3 if s.app == "ChannelRedirect"] == ["hotline-threeway"]
    assert t3[0].app == "Set" and t3[0].args == "HOTLINE_THREEWAY=1"
    (orig,) = [s for s in t3 if s.app == "Originate"]
    # tech_data,type,arg1,arg2,arg3,timeout,options: a number in the timeout slot (once 'a' was there)
    # the new leg inherits nothing: the call's id names the conference, its centre the expert queue (<centre>-expert-…)
    assert orig.args == (
        "Local/9001@hotline-onekey,exten,hotline-threeway,s,1,60,"
        "v(HOTLINE_CALL_ID=${HOTLINE_CALL_ID}^HOTLINE_CENTRE=${HOTLINE_CENTRE})"
    )
    agents = parse_extensions(render_all(_model(tmp_path))["extensions.conf"])["hotline-agents"].extensions  # type: ignore[arg-type]
    assert agents["_[0-9A-Za-z]!"][0].args == "PJSIP/${EXTEN},,tF(hotline-threeway^agent^1)"
    app = dict(sections["applicationmap"].items)
    assert app["hotline-b110"] == "*1110,self/callee,Gosub(hotline-xfer,b110,1)"
    assert "hotline-t9001" in app  # three-way to the expert seats
    assert {k for k, _ in sections["hotline_xfer"].items} == set(app)


def test_check_finds_dangling_targets(tmp_path: Path) -> None:
    model = _model(tmp_path)
    files = render_all(model)  # type: ignore[arg-type]
    files["extensions.conf"] = (
        files["extensions.conf"]
        .replace("Goto(hotline-fallback,s,1)", "Goto(hotline-nowhere,s,1)", 1)
        .replace(
            "Queue(${HOTLINE_TARGET},tcF(hotline-threeway^agent^1)b(hotline-agent-setup^s^1))",
            "Queue(gx-missing,tcb(hotline-nosetup^s^1))",
            1,
        )
        .replace("Playback(hotline/goodbye)", "Playback(hotline/no-such-prompt)")
    )
    write_all(files, tmp_path / "out")
    problems = check_directory(tmp_path / "out", set(known_prompt_ids(load_catalogue(), model)))  # type: ignore[arg-type]
    text = "\n".join(problems)
    assert "hotline-nowhere" in text and "hotline-nosetup" in text and "gx-missing" in text and "no-such-prompt" in text


def test_check_cli_reports_ok_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_all(render_all(_model(tmp_path)), tmp_path / "ok")  # type: ignore[arg-type]
    assert main(["dialplan", "check", str(tmp_path / "ok")]) == 0
    (tmp_path / "ok" / "queues.conf").write_text("[general]\n[gx-general]\nstrategy=ringall\n", encoding="utf-8")
    assert main(["dialplan", "check", str(tmp_path / "ok")]) == 1
    assert "autofill" in capsys.readouterr().err


def test_parser_reads_priorities_labels_and_includes() -> None:
    text = """
[a]
include => b
exten => 100,1,NoOp(x) ; comment
 same => n(top),Set(X=1\\;2)
 same => n,Goto(top)
exten => _0X.,1,Hangup()
[b]
exten => s,1,Return()
"""
    contexts = parse_extensions(text)
    steps = contexts["a"].extensions["100"]
    assert [(s.priority, s.label, s.app) for s in steps] == [(1, None, "NoOp"), (2, "top", "Set"), (3, None, "Goto")]
    assert steps[1].args == "X=1\\;2"
    assert contexts["a"].includes == ["b"]
    assert match_pattern("_0X.", "0771") and not match_pattern("_0X.", "0") and match_pattern("_+X.", "+8677")
    with pytest.raises(ConfSyntaxError, match="conf:3"):
        parse_extensions("[a]\nexten => 1,1,NoOp()\n same => 1,NoOp()\n", "x.conf")


def test_render_rejects_a_bad_controller(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    assert main(["dialplan", "render", str(path), "-o", str(tmp_path / "o"), "--controller", "nohost"]) == 2
    assert "host:port" in capsys.readouterr().err


@pytest.fixture(scope="module")
def shipped() -> dict[str, tuple[MergerConfig, dict[str, Context], set[str]]]:
    """Per region: the model, parsed golden extensions.conf and the queues of queues.conf (parsed once)."""
    out = {}
    for region in REGIONS:
        model = load_config(REPO / "merger_config" / f"{region}.yaml").model
        directory = REPO / "dialplans" / region
        contexts = parse_extensions((directory / "extensions.conf").read_text(encoding="utf-8"))
        queues = {s.name for s in parse_sections((directory / "queues.conf").read_text(encoding="utf-8"))}
        out[region] = (model, contexts, queues - {"general"})
    return out


def _moments(line: LinePlan, table: RoutingTable) -> list[dt.datetime]:
    """A time inside the line's transition window when it has one, and one long after every date."""
    moments = [dt.datetime(2030, 6, 1, 10, 0, tzinfo=table.timezone)]
    if line.window_start is not None and line.window_end is not None:
        mid = (line.window_start + line.window_end) / 2
        moments.append(dt.datetime.fromtimestamp(mid, table.timezone).replace(hour=10))
    return moments


@pytest.mark.parametrize("region", REGIONS)
def test_every_decided_queue_exists(
    region: str, shipped: dict[str, tuple[MergerConfig, dict[str, Context], set[str]]]
) -> None:
    model, _, queues = shipped[region]
    table = compile_config(model)
    cities: list[str | None] = [None, *sorted(c.id for c in model.cities)]
    later = dt.datetime(2030, 6, 1, 10, 0, tzinfo=table.timezone)
    # 12345 itself, each menu digit and each expert topic, then every line in and after its window
    calls = [(Call("12345", ivr_choice=k), later) for k in (None, *MENU_QUEUES, EXPERT_DIGIT)]
    calls += [(Call("12345", ivr_choice=EXPERT_DIGIT, topic=n), later) for n in sorted(table.lines)]
    calls += [(Call(n), now) for n, line in sorted(table.lines.items()) for now in _moments(line, table)]
    checked = 0
    for call, now in calls:
        for city in cities:
            d = decide(replace(call, city=city), table, now)
            if d.action is not Action.QUEUE:
                continue
            missing = [q for q in (d.target, d.overflow, d.expert_queue) if q and q not in queues]
            assert not missing, f"{region}: {call} at {now:%Y-%m-%d} -> {missing} not in queues.conf"
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("region", REGIONS)
def test_every_dialled_form_is_inbound(
    region: str, shipped: dict[str, tuple[MergerConfig, dict[str, Context], set[str]]]
) -> None:
    model, contexts, _ = shipped[region]
    inbound = contexts["hotline-inbound"].extensions
    area_of = {c.id: c.area_code for c in model.cities}
    areas = sorted(area_of.values())
    only = areas[0] if len(areas) == 1 else None
    for line in model.hotlines:
        for number in (line.number, *line.aliases):
            own = area_of.get(line.city or "", only)
            for area in areas if is_short_code(number) else [a for a in [own] if a]:
                for form in dialled_forms(number, area):
                    assert form in inbound, f"{region}: {form} ({line.number}) is not in [hotline-inbound]"
                    assert inbound[form][-1].args == "hotline-route,${EXTEN},1"
    for area in areas:
        assert all(form in inbound for form in dialled_forms("12345", area))


@pytest.mark.parametrize("region", REGIONS)
def test_every_jump_and_queue_of_the_dialplan_exists(
    region: str, shipped: dict[str, tuple[MergerConfig, dict[str, Context], set[str]]]
) -> None:
    model, contexts, queues = shipped[region]
    for ctx in contexts.values():
        for ext, steps in ctx.extensions.items():
            labels = {s.label for s in steps if s.label}
            for step in steps:
                where = f"{region} [{ctx.name}] {ext},{step.priority}"
                target = step.args
                if step.app == "GotoIf":
                    branch = target.split("?", 1)[1]
                    targets = [t for t in branch.split(":") if t]
                elif step.app in ("Goto", "Gosub"):
                    targets = [target]
                else:
                    targets = []
                if step.app == "Queue":
                    queue = target.split(",", 1)[0]
                    assert "${" in queue or queue in queues, f"{where}: queue {queue} not in queues.conf"
                for t in targets:
                    parts = t.split(",")
                    if len(parts) == 1:
                        assert parts[0] in labels or parts[0].isdigit(), f"{where}: no label {parts[0]}"
                    elif "${" not in parts[0]:
                        goal = contexts.get(parts[0])
                        assert goal is not None, f"{where}: no context {parts[0]}"
                        assert "${" in parts[1] or find_extension(goal, parts[1]), f"{where}: no extension {t}"
    fallback = contexts["hotline-fallback"].extensions["s"]
    centre = next(c.id for c in model.centres if c.city is None)
    assert fallback[1].args == f'$["${{HOTLINE_CENTRE}}" = ""]?Set(HOTLINE_CENTRE={centre})'
    assert f"{centre}-general" in queues
    # every city's fallback centre (set by its trunk or its dialled area code) has a general queue
    fallbacks = {
        s.args.rsplit("HOTLINE_FALLBACK_CENTRE=", 1)[1].rstrip(")")
        for ctx in contexts.values()
        for steps in ctx.extensions.values()
        for s in steps
        if "Set(HOTLINE_FALLBACK_CENTRE=" in f"{s.app}({s.args})"
    }
    assert {f"{c}-general" for c in fallbacks} == set(fallback_queues(model).values()) <= queues


@pytest.mark.parametrize("region", REGIONS)
def test_one_key_transfers_report_themselves_for_the_audit(region: str) -> None:
    """Every b<code>/t<code> feature sends HotlineTransfer once the caller is moved (blind) or the target
    answered or not (three-way: ORIGINATE_STATUS; the caller gone: CHANNELREDIRECT_STATUS), naming the
    target by the key the CLI and MQTT transfers are audited under."""
    model = load_config(REPO / "merger_config" / f"{region}.yaml").model
    policy = build_policy(model)
    xfer = parse_extensions((REPO / "dialplans" / region / "extensions.conf").read_text(encoding="utf-8"))[
        "hotline-xfer"
    ]
    assert xfer.extensions
    for name, steps in xfer.extensions.items():
        kind, code = name[0], name[1:]
        redirect = next(i for i, s in enumerate(steps) if s.app == "ChannelRedirect")
        events = [s for s in steps if s.app == "UserEvent"]
        assert steps[redirect + 1].app == ("UserEvent" if kind == "b" else "GotoIf"), name
        assert len(events) == {"b": 1, "t": 2}[kind], name
        for event, status in zip(
            events,
            ["CHANNELREDIRECT_STATUS"] if kind == "b" else ["ORIGINATE_STATUS", "CHANNELREDIRECT_STATUS"],
            strict=True,
        ):
            fields = dict(part.split(": ", 1) for part in event.args.split(",")[1:])
            assert event.args.split(",")[0] == cv.EVENT_TRANSFER
            assert fields == {
                "CallId": f"${{{cv.CALL_ID}}}",
                "Target": policy.targets[code].key,
                "Mode": {"b": "blind", "t": "threeway"}[kind],
                "Channel": "${CHANNEL}",
                "Result": f"${{{status}}}",
                "Step": "Originate" if status == "ORIGINATE_STATUS" else "ChannelRedirect",
            }
