"""Plain-text table and CSV forms of the report sections."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from hotline_cti.reports.sections import Percent, Seconds, Section
from hotline_cti.text_output import table


def render_table(title: str, sections: Sequence[Section]) -> str:
    """The report for a terminal: a title, then each section as an aligned table (English column names)."""
    parts = [title]
    for sec in sections:
        parts.append(f"\n{sec.zh} / {sec.en}")
        parts.append(table([c.en for c in sec.columns], sec.rows) if sec.rows else "(none)")
    return "\n".join(parts) + "\n"


def raw_value(value: object) -> str:
    """A cell as CSV wants it: shares as 0..1 with 4 decimals, seconds as numbers, empty for no value."""
    if isinstance(value, Percent):
        return "" if value.value is None else f"{value.value:.4f}"
    if isinstance(value, Seconds):
        return "" if value.value is None else f"{value.value:.1f}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def render_csv(sections: Sequence[Section]) -> str:
    """The report in long form: one ``section,name,metric,value`` line per figure (easy to pivot or load)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "name", "metric", "value"])
    for sec in sections:
        for row in sec.rows:
            for col, value in zip(sec.columns[1:], row[1:], strict=True):
                writer.writerow([sec.key, raw_value(row[0]), col.en, raw_value(value)])
    return out.getvalue()
