"""Caller numbers are personal data: the one place they are masked for logs, events and output.

A number is masked however it is written: ``13812345678``, ``138-1234-5678``, ``138 1234 5678``,
``+86 138 1234 5678``, ``0086 13812345678``, ``(0771) 555-1234``, ``0771-5551234``. Its digits are
masked together, separators dropped: the first 3 and last 4 of 11 digits or more (``138****5678``,
``077****1234``), the first 2 and last 2 of 7 to 10 (``25****66``), none of fewer. A country prefix
counts as digits of the number (``+86 138 1234 5678`` -> ``+861****5678``), so it shows less, not
more. The fixed mask also hides the length.
"""

from __future__ import annotations

import re

_SEPARATORS = str.maketrans("", "", " -()\t")
# One group of digits, maybe in brackets as an area code is: (0771).
_GROUP = r"\(?[0-9]+\)?"
# Between groups: spaces, a dash with spaces around it, or nothing at a bracket: +86(0771)5551234.
_JOIN = r"(?:[ \t]{0,2}-[ \t]{0,2}|[ \t]{1,2}|(?<=\))|(?=\())"
_TEXT_RE = re.compile(
    # Dates and times are left alone (2026-11-23 08:00 is no phone number); tried first at each place.
    r"(?P<date>(?:19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}(?:[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2})?)?)"
    # A number: not inside a word (agent1001-0000012 is a channel), a dotted Asterisk uniqueid
    # (1700000000.42) or a longer digit run; groups joined by separators; masked when 7+ digits.
    # Right after an escape of repr() (a backslash n, or x00) is the start of a number too.
    rf"|(?P<number>(?:(?<![A-Za-z0-9_.])|(?<=\\[nrt])|(?<=\\x[0-9a-f]{{2}}))\+?{_GROUP}(?:{_JOIN}{_GROUP})*(?![0-9]|\.[0-9]))"
    # A run of 7+ digits glued to letters (PJSIP/cid13812345678) as before.
    r"|(?P<run>(?<![0-9.])[0-9]{7,}(?!\.[0-9])(?![0-9]))"
)


def _mask_digits(digits: str) -> str:
    n = len(digits)
    if n < 7:
        return "*" * n
    head, tail = (3, 4) if n >= 11 else (2, 2)
    return f"{digits[:head]}****{digits[-tail:]}"  # a fixed mask also hides the length


def mask_number(number: str) -> str:
    """Mask one number: ``138-1234-5678`` -> ``138****5678``, ``2587066`` -> ``25****66``; short ones fully."""
    text = number.translate(_SEPARATORS)
    plus = "+" if text.startswith("+") else ""
    return plus + _mask_digits(text.lstrip("+"))


def _mask_match(match: re.Match[str]) -> str:
    text = match.group(0)
    if match.group("date") is not None:
        return text
    digits = sum(c.isdigit() for c in text)
    if digits < 7:
        return text  # a count, a short code, an extension: not a caller number
    masked = mask_number(text)
    # Brackets that did not pair inside the number belong to the text around it: "(tel 138 1234 5678)".
    if text.endswith(")") and text.count("(") < text.count(")"):
        masked += ")"
    if text.startswith("(") and text.count("(") > text.count(")"):
        masked = "(" + masked
    return masked


def mask_numbers(text: str) -> str:
    """Mask every phone-number-like digit run in free text (log lines, AMI messages), however written."""
    return _TEXT_RE.sub(_mask_match, text)
