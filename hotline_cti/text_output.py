"""Text formatting for the CLI: aligned tables and key/value blocks that stay aligned with Chinese names.

Terminals show CJK characters two columns wide, so widths are counted in
display columns, not in ``len()``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` display columns."""
    return text + " " * max(0, width - display_width(text))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table: header, dashes, one line per row; None shows as '-'."""
    cells = [[cell_text(c) for c in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    lines = [_row(list(headers), widths), _row(["-" * w for w in widths], widths)]
    lines += [_row(row, widths) for row in cells]
    return "\n".join(lines)


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(pad(c, w) for c, w in zip(cells, widths, strict=True)).rstrip()


def cell_text(value: object) -> str:
    """How one value reads in a table or key/value line."""
    if value is None or value == "" or value == () or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def key_values(pairs: Iterable[tuple[str, object]]) -> str:
    """``key: value`` lines with the values aligned in one column."""
    items = [(k, cell_text(v)) for k, v in pairs]
    width = max((display_width(k) for k, _ in items), default=0) + 1
    return "\n".join(f"{pad(k + ':', width)} {v}" for k, v in items)


def to_json(data: Any) -> str:
    """One JSON object, Chinese kept readable (not \\u-escaped)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=False)
