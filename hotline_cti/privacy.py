"""Caller numbers are personal data: the one place they are masked for logs, events and output."""

from __future__ import annotations

import re

_SEPARATORS = str.maketrans("", "", " -()\t")
# Runs of 7+ digits (optionally with a leading +) that are not part of a
# dotted Asterisk uniqueid such as 1700000000.42.
_NUMBER_RE = re.compile(r"(?<![\d.])(?<!\d\.)\+?\d{7,}(?!\.\d)(?!\d)")


def _mask_digits(digits: str) -> str:
    n = len(digits)
    if n < 7:
        return "*" * n
    head, tail = (3, 4) if n >= 11 else (2, 2)
    return f"{digits[:head]}****{digits[-tail:]}"  # a fixed mask also hides the length


def mask_number(number: str) -> str:
    """Mask one number: ``13812345678`` -> ``138****5678``, ``2587066`` -> ``25****66``; short ones fully."""
    text = number.translate(_SEPARATORS)
    plus = "+" if text.startswith("+") else ""
    return plus + _mask_digits(text.lstrip("+"))


def mask_numbers(text: str) -> str:
    """Mask every phone-number-like digit run in free text (log lines, AMI messages)."""
    return _NUMBER_RE.sub(lambda m: mask_number(m.group(0)), text)
