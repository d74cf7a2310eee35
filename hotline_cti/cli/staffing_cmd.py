"""``hotline-cti staffing``: seats per queue from a traffic file, and the merger what-if per cut-over date."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hotline_cti.cli.config_cmd import print_problems
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.yamlsource import read_yaml
from hotline_cti.staffing.merger import KIND_LABELS, KIND_ORDER, GroupNeed, Stage, merger_stages
from hotline_cti.staffing.seats import SeatNeed, seats_needed
from hotline_cti.staffing.traffic import Targets, TrafficFile, resolve, traffic_from_tree
from hotline_cti.text_output import table, to_json

NEED_HEADERS = ["calls/h", "AHT s", "patience s", "Erlang", "seats SL", "seats 95%", "seats", "SL", "answered"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``staffing`` sub-command and its ``merger`` action."""
    p = sub.add_parser(
        "staffing",
        help="seats needed per queue (Erlang C service level, Erlang A 95%% answered); 'merger' for the what-if",
        description="Seats each queue of a traffic file needs for its service level (Erlang C) and for the "
        "answered floor with callers who give up (Erlang A). See docs/staffing.md.",
    )
    p.add_argument("--traffic", type=Path, metavar="FILE", help="traffic YAML (its queues: section)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    p.set_defaults(func=run_queues)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    m = actions.add_parser(
        "merger",
        help="seats 12345's queues, expert groups and sub-centres need after each cut-over date",
        description="From each line's traffic before the merger (the traffic file's main: and lines:) and the "
        "merger list, the seats needed before the merger and from each cut-over date on.",
    )
    m.add_argument("--config", required=True, metavar="FILE", help="merger config, e.g. merger_config/guangxi.yaml")
    m.add_argument("--traffic", type=Path, required=True, metavar="FILE", help="traffic YAML (main: and lines:)")
    m.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    m.set_defaults(func=run_merger)


def _load_traffic(path: Path) -> tuple[TrafficFile, Any]:
    tree = read_yaml(path)
    return traffic_from_tree(tree), tree


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _need_cells(need: SeatNeed) -> list[object]:
    load = need.load
    return [
        f"{load.calls_per_hour:g}",
        f"{load.aht_s:.0f}",
        f"{load.patience_s:.0f}",
        f"{load.erlangs:.1f}",
        need.for_service_level,
        need.for_answered,
        need.seats,
        _pct(need.service_level),
        _pct(need.answered),
    ]


def _need_json(need: SeatNeed) -> dict[str, object]:
    load = need.load
    return {
        "calls_per_hour": load.calls_per_hour,
        "aht_s": load.aht_s,
        "patience_s": load.patience_s,
        "erlangs": round(load.erlangs, 3),
        "seats_for_service_level": need.for_service_level,
        "seats_for_answered": need.for_answered,
        "seats": need.seats,
        "service_level": need.service_level,
        "answered": need.answered,
    }


def _targets_line(t: Targets) -> str:
    return f"targets: {t.service_level:.0%} answered within {t.within_s:g} s (Erlang C); ≥{t.answered:.0%} answered (Erlang A)"


def run_queues(args: argparse.Namespace) -> int:
    """Seats per queue of the traffic file's ``queues:`` section."""
    if args.traffic is None:
        print("hotline-cti staffing: error: argument --traffic is required (or use: staffing merger)", file=sys.stderr)
        return 2
    try:
        traffic, _ = _load_traffic(args.traffic)
    except ConfigError as exc:
        print_problems(exc, str(args.traffic), sys.stderr)
        return 1
    if not traffic.queues:
        print(f"{args.traffic}: queues: has no entries", file=sys.stderr)
        return 1
    needs = {
        name: seats_needed(resolve(load, traffic.defaults), traffic.targets) for name, load in traffic.queues.items()
    }
    if args.format == "json":
        print(
            to_json({"targets": traffic.targets.model_dump(), "queues": {n: _need_json(v) for n, v in needs.items()}})
        )
        return 0
    print(_targets_line(traffic.targets))
    print(table(["queue", *NEED_HEADERS], [[name, *_need_cells(need)] for name, need in needs.items()]))
    print(f"total seats: {sum(n.seats for n in needs.values())}")
    return 0


def _stage_title(stage: Stage) -> str:
    if stage.date is None:
        return "合并前 before the merger (every line on its own seats)"
    return f"自 {stage.date} 起 from {stage.date} (cut over: {', '.join(stage.cut_over) or '-'})"


def _group_row(g: GroupNeed) -> list[object]:
    return [KIND_LABELS[g.kind], g.name, *_need_cells(g.need)]


def render_stages(stages: Sequence[Stage], targets: Targets) -> str:
    """The what-if as text: one table per stage, then seats per kind of group across the stages."""
    parts = [_targets_line(targets)]
    for stage in stages:
        parts += [
            "",
            _stage_title(stage),
            table(["group", "name", *NEED_HEADERS], [_group_row(g) for g in stage.groups]),
        ]
    summary = [[str(s.date or "before"), *(s.seats_of(kind) for kind in KIND_ORDER), s.seats] for s in stages]
    parts += ["", "各阶段座席 seats per stage", table(["from", *KIND_ORDER, "total"], summary)]
    return "\n".join(parts)


def run_merger(args: argparse.Namespace) -> int:
    """The merger what-if for a config and a traffic file."""
    try:
        checked = load_checked(args.config)
    except ConfigError as exc:
        print_problems(exc, args.config, sys.stderr)
        return 1
    try:
        traffic, tree = _load_traffic(args.traffic)
        stages = merger_stages(checked.model, traffic, tree)
    except ConfigError as exc:
        print_problems(exc, str(args.traffic), sys.stderr)
        return 1
    if args.format == "json":
        data = [
            {
                "from": str(s.date) if s.date else None,
                "cut_over": s.cut_over,
                "seats": s.seats,
                "groups": [{"kind": g.kind, "name": g.name, **_need_json(g.need)} for g in s.groups],
            }
            for s in stages
        ]
        print(to_json({"targets": traffic.targets.model_dump(), "stages": data}))
        return 0
    print(render_stages(stages, traffic.targets))
    return 0
