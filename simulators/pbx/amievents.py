"""AMI event bodies as Asterisk 20 writes them (field names of manager_channels.c and app_queue.c).

Each builder returns the ``(key, value)`` pairs of one event, ``Event`` first,
ready for :meth:`simulators.ami_server.AmiServer.emit` or an in-process sink.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

Fields = list[tuple[str, str]]

UP, RING = 6, 4
STATE_DESC = {4: "Ring", 5: "Ringing", 6: "Up"}


def channel_snapshot(
    prefix: str,
    channel: str,
    uniqueid: str,
    linkedid: str,
    caller: str,
    connected: str = "",
    *,
    state: int = UP,
    context: str = "hotline-route",
    exten: str = "s",
) -> Fields:
    """The standard channel snapshot block (``prefix`` = "" or "Dest")."""
    return [
        (f"{prefix}Channel", channel),
        (f"{prefix}ChannelState", str(state)),
        (f"{prefix}ChannelStateDesc", STATE_DESC.get(state, "Unknown")),
        (f"{prefix}CallerIDNum", caller or "<unknown>"),
        (f"{prefix}CallerIDName", "<unknown>"),
        (f"{prefix}ConnectedLineNum", connected or "<unknown>"),
        (f"{prefix}ConnectedLineName", "<unknown>"),
        (f"{prefix}Language", "zh"),
        (f"{prefix}AccountCode", ""),
        (f"{prefix}Context", context),
        (f"{prefix}Exten", exten),
        (f"{prefix}Priority", "1"),
        (f"{prefix}Uniqueid", uniqueid),
        (f"{prefix}Linkedid", linkedid),
    ]


def head(event: str, privilege: str, at: float) -> Fields:
    """``Event``, ``Privilege`` and ``Timestamp`` (as with ``timestampevents=yes``; virtual time in virtual runs)."""
    return [("Event", event), ("Privilege", f"{privilege},all"), ("Timestamp", f"{at:.6f}")]


def cdr_time(at: float | None, tz: ZoneInfo) -> str:
    """Cdr's ``YYYY-MM-DD HH:MM:SS`` in the PBX's local time; empty when it never happened."""
    if at is None:
        return ""
    return dt.datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M:%S")


def member_status(
    queue: str,
    name: str,
    interface: str,
    *,
    status: int,
    in_call: bool,
    taken: int,
    last: float,
    paused: bool,
    wrapup: float,
    at: float,
) -> Fields:
    """QueueMemberStatus (Status: 1 not in use, 2 in use, 5 unavailable, 6 ringing)."""
    return [
        *head("QueueMemberStatus", "agent", at),
        ("Queue", queue),
        ("MemberName", name),
        ("Interface", interface),
        ("StateInterface", interface.replace("Local/", "PJSIP/").split("@")[0]),
        ("Membership", "dynamic"),
        ("Penalty", "0"),
        ("CallsTaken", str(taken)),
        ("LastCall", str(int(last))),
        ("LastPause", "0"),
        ("LoginTime", "0"),
        ("InCall", "1" if in_call else "0"),
        ("Status", str(status)),
        ("Paused", "1" if paused else "0"),
        ("PausedReason", ""),
        ("Ringinuse", "0"),
        ("Wrapuptime", str(int(wrapup))),
    ]
