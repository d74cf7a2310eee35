"""The agents' section of the KPI report (issue 18): logged-in time, pause time by reason, talk, occupancy."""

from __future__ import annotations

from collections.abc import Sequence

from hotline_cti.kpi.agent_time import AgentFigures
from hotline_cti.reports.sections import Column, Percent, Seconds, Section


def agent_section(figures: Sequence[AgentFigures]) -> Section:
    """One row per agent and queue (``agent1001@gx-general``: CSV names a row by its first cell), then the
    agent's total over all its queues (``agent1001``)."""
    section = Section(
        "agents",
        "座席状态",
        "Agents",
        [
            Column("座席@队列", "agent@queue"),
            Column("登录时长", "logged in"),
            Column("示忙时长", "paused"),
            Column("示忙原因", "pause by reason"),
            Column("通话", "calls"),
            Column("通话时长", "talk"),
            Column("占用率", "occupancy"),
        ],
    )
    for f in figures:
        reasons = " ".join(f"{reason}={seconds:.0f}s" for reason, seconds in sorted(f.paused.items())) or "-"
        section.add(
            [
                f"{f.agent}@{f.queue}" if f.queue else f.agent,
                Seconds(f.logged_in),
                Seconds(f.paused_total),
                reasons,
                f.calls,
                Seconds(f.talk),
                Percent(f.occupancy),
            ]
        )
    return section
