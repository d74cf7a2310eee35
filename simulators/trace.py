"""Trace record and replay: the generated arrivals as JSON lines, one call a line.

The first line is a header ``{"trace": 1, "scenario": ..., "seed": ...}``;
every other line is one :class:`~simulators.pbx.model.Arrival` with its
fields by name. Caller numbers are synthetic (the load generator draws them),
so a trace holds no personal data. A bad line is an error naming
``file:line``; nothing is replayed from a trace that does not read whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from hotline_cti.config.errors import ConfigError
from hotline_cti.config.limits import read_text_bounded
from simulators.pbx.model import Arrival

VERSION = 1
MAX_TRACE_BYTES = 512 * 1024 * 1024  # a week of a national hotline's arrivals, one JSON line each
_FIELDS = {f.name for f in fields(Arrival)}


class TraceError(ValueError):
    """A trace file that cannot be replayed; the message names file:line."""


def write_trace(path: str | Path, arrivals: Iterable[Arrival], **header: Any) -> int:
    """Write ``arrivals`` to ``path``; returns how many were written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        out.write(json.dumps({"trace": VERSION, **header}, ensure_ascii=False) + "\n")
        for arrival in arrivals:
            out.write(json.dumps(asdict(arrival), ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def read_trace(path: str | Path) -> tuple[dict[str, Any], list[Arrival]]:
    """The header and the arrivals of a trace, in time order. Raises :class:`TraceError`."""
    path = Path(path)
    arrivals: list[Arrival] = []
    header: dict[str, Any] | None = None
    try:
        # Bounded, regular files only, so --replay /dev/zero is refused instead of eating memory.
        lines = read_text_bounded(path, MAX_TRACE_BYTES).splitlines()
    except ConfigError as exc:
        raise TraceError(str(exc)) from None
    last = float("-inf")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{where}: not JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise TraceError(f"{where}: expected a JSON object")
        if header is None:
            if data.get("trace") != VERSION:
                raise TraceError(f'{where}: not a trace file (first line must be {{"trace": {VERSION}, ...}})')
            header = data
            continue
        unknown = set(data) - _FIELDS
        if unknown:
            raise TraceError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            arrival = Arrival(**data)
            if not isinstance(arrival.at, int | float) or not isinstance(arrival.dialled, str):
                raise TypeError("'at' must be a number and 'dialled' a string")
        except TypeError as exc:
            raise TraceError(f"{where}: {exc}") from exc
        if arrival.at < last:
            raise TraceError(f"{where}: arrivals must be in time order ({arrival.at} after {last})")
        last = arrival.at
        arrivals.append(arrival)
    if header is None:
        raise TraceError(f"{path}:1: the trace is empty")
    return header, arrivals


def write_sipp_injection(
    arrivals: Iterable[Arrival], line_csv: str | Path, menu_csv: str | Path, menu_ms: int, speed: float = 1.0
) -> tuple[int, int]:
    """SIPp injection files (``-inf``) for simulators/sipp/uac_line.xml and uac_12345_menu.xml.

    Line calls: ``number;hold_ms;caller``. 12345 calls with a menu key:
    ``number;hold_ms;caller;key;menu_ms``, the key pressed ``menu_ms`` after the answer. The hold is
    the caller's whole stay (menu + talk), scaled down by ``speed`` like the arrival rate, so a load
    played N times faster also holds N times shorter; returns (line calls, menu calls).
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive, not {speed}")
    lines, menus = ["SEQUENTIAL"], ["SEQUENTIAL"]
    for a in arrivals:
        hold = int(a.service * 1000 / speed)
        if a.ivr is not None:
            menus.append(f"{a.dialled};{hold + menu_ms};{a.caller};{a.ivr};{menu_ms}")
        else:
            lines.append(f"{a.dialled};{hold};{a.caller}")
    Path(line_csv).write_text("\n".join(lines) + "\n", encoding="ascii")
    Path(menu_csv).write_text("\n".join(menus) + "\n", encoding="ascii")
    return len(lines) - 1, len(menus) - 1
