"""Asterisk's own CDR as a second source of call records: pure parsing, no I/O.

AMI keeps no history: a call that starts and ends while no events service is logged in is never
seen on AMI. Asterisk's CDR engine writes every call whoever listens, so the events service reads
the CDR file Asterisk appends to (``cdr_custom``, one CSV line per CDR, columns
:data:`CDR_FIELDS`; the ``cdr_custom.conf`` line is :func:`custom_mapping`) and reconciles it
with what it built from AMI (serve/cdr_follow.py). This module turns CSV lines into
:class:`CdrRow` s and a call's caller-leg rows into the :class:`CallRecord` AMI would have given,
as far as the CDR knows it: times, caller, dialled number, answered or not, the seat and talk
time. The route (mode, action, target) is not in the CDR and stays empty.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from hotline_cti.records.caller import CallerPolicy
from hotline_cti.records.model import CallRecord, Outcome

__all__ = ["CDR_FIELDS", "CdrRow", "custom_mapping", "parse_line", "record_from_rows"]

# Columns of the CDR file, in order (cdr_custom.conf: custom_mapping()).
CDR_FIELDS = (
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "uniqueid",
    "linkedid",
    "userfield",
)
# start/answer/end as epoch seconds ("u"), duration/billsec with fractions ("f").
_OPTIONS = {"start": ",u", "answer": ",u", "end": ",u", "duration": ",f", "billsec": ",f"}
MAX_LINE = 8192  # a longer line is not a CDR of ours: skipped


def custom_mapping(file_name: str = "Master.csv") -> str:
    """The ``[mappings]`` line of ``cdr_custom.conf`` that writes the columns this module reads."""
    cols = ",".join(f"${{CSV_QUOTE(${{CDR({f}{_OPTIONS.get(f, '')})}})}}" for f in CDR_FIELDS)
    return f"{file_name} => {cols}"


@dataclass(frozen=True, slots=True)
class CdrRow:
    """One CDR line: the columns that make a record."""

    uniqueid: str
    linkedid: str
    src: str
    dst: str
    dstchannel: str
    lastapp: str
    disposition: str
    start: dt.datetime
    answer: dt.datetime | None
    end: dt.datetime
    billsec: float

    @property
    def caller_leg(self) -> bool:
        """The call's first channel (the caller's: its Uniqueid is the call id, HOTLINE_CALL_ID)."""
        return self.uniqueid == self.linkedid


def _epoch(text: str) -> dt.datetime | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not 0 < value < 1e11:
        return None
    return dt.datetime.fromtimestamp(value, dt.UTC)


def parse_line(line: str) -> CdrRow | None:
    """One CSV line of the CDR file; None when it is not one (wrong columns, no times, no unique id)."""
    if len(line) > MAX_LINE:
        return None
    try:
        cells = next(csv.reader([line]), None)
    except csv.Error:
        return None
    if cells is None or len(cells) < len(CDR_FIELDS) - 1:  # userfield may be cut off
        return None
    row = dict(zip(CDR_FIELDS, cells, strict=False))
    start, end = _epoch(row["start"]), _epoch(row["end"])
    if start is None or end is None or not row["uniqueid"] or end < start:
        return None
    try:
        billsec = max(0.0, float(row["billsec"] or 0))
    except ValueError:
        billsec = 0.0
    return CdrRow(
        uniqueid=row["uniqueid"],
        linkedid=row["linkedid"] or row["uniqueid"],
        src=row["src"],
        dst=row["dst"],
        dstchannel=row["dstchannel"],
        lastapp=row["lastapp"],
        disposition=row["disposition"].upper(),
        start=start,
        answer=_epoch(row["answer"]) if row["answer"] else None,
        end=end,
        billsec=billsec,
    )


def _seat(channel: str) -> str:
    """``PJSIP/8001-0000001a`` -> ``PJSIP/8001``; ``Local/8001@agents-00000008;1`` -> ``Local/8001@agents``."""
    head, sep, tail = channel.partition(";")[0].rpartition("-")
    return head if sep and tail and all(c in "0123456789abcdef" for c in tail.lower()) else channel


def record_from_rows(
    call_id: str, rows: Iterable[CdrRow], region: str, callers: CallerPolicy | None = None
) -> CallRecord | None:
    """The record of one call from its caller leg's CDR rows (Asterisk writes one per party it was bridged
    with); None without any. Answered means a row with a called channel that answered (the IVR's own
    ``Answer()`` leaves no called channel); unanswered ones that ended in ``Queue`` were abandoned."""
    legs = sorted((r for r in rows if r.uniqueid == call_id), key=lambda r: (r.start, r.end))
    if not legs:
        return None
    first = legs[0]
    answered = [r for r in legs if r.dstchannel and r.disposition == "ANSWERED" and r.answer is not None]
    record = CallRecord(
        call_id=call_id,
        region=region,
        started=min(r.start for r in legs),
        ended=max(r.end for r in legs),
        caller=(callers or CallerPolicy()).protect(first.src),
        dialled=first.dst if first.dst not in ("", "s") else "",
    )
    if answered:
        record.agent = _seat(answered[0].dstchannel)
        record.talk = sum(r.billsec for r in answered)  # the queue wait is not in the CDR: left unknown
        record.outcome = Outcome.ANSWERED
    elif legs[-1].lastapp.lower() == "queue":
        record.outcome = Outcome.ABANDONED
    else:
        record.outcome = Outcome.FAILED
    return record
