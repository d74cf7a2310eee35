"""Dialled-number normalisation: local, national (0xxx…) and +86 forms.

Pure functions, no I/O. A dialled number is reduced to ``(area_code, local)``
where ``area_code`` is ``None`` when the caller dialled no area code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NumberForm(StrEnum):
    """How the caller wrote the number."""

    LOCAL = "local"  # 12345, 2666110
    NATIONAL = "national"  # 035912345, 03592666110
    INTERNATIONAL = "international"  # +8635912345, 008603592666110


@dataclass(frozen=True, slots=True)
class DialledNumber:
    """A dialled number split into area code and local part."""

    raw: str
    form: NumberForm
    area_code: str | None
    local: str


class NumberError(ValueError):
    """The text is not a telephone number."""


_STRIP = str.maketrans("", "", " -()\t")


def area_code_length(national: str) -> int:
    """Length of the area code at the head of a national number ('0' included).

    China's fixed-network rule: 010 and 02x are three digits, every other area
    code (0311, 0359, 0771, …) is four.
    """
    if national.startswith(("01", "02")):
        return 3
    return 4


def parse_dialled(raw: str) -> DialledNumber:
    """Split a dialled number into form, area code and local part.

    Accepts ``12345``, ``0771-12345``, ``+86 771 12345``, ``0086 771 12345``
    and ``+86 0771 12345``. Raises :class:`NumberError` for anything that is
    not made of digits after the usual separators are removed.
    """
    if raw.isdigit() and raw.isascii() and not raw.startswith("0"):
        return DialledNumber(raw, NumberForm.LOCAL, None, raw)  # the common case: 12345, 12315, 2587066
    text = raw.translate(_STRIP)
    form = NumberForm.LOCAL
    if text.startswith("+86"):
        text, form = text[3:], NumberForm.INTERNATIONAL
    elif text.startswith("0086"):
        text, form = text[4:], NumberForm.INTERNATIONAL
    if not text.isdigit() or not text.isascii():
        raise NumberError(f"{raw!r} is not a telephone number")
    if form is NumberForm.INTERNATIONAL:
        if not text.startswith("0"):
            text = "0" + text
    elif text.startswith("0"):
        form = NumberForm.NATIONAL
    if text.startswith("0"):
        if len(text) < 5:
            raise NumberError(f"{raw!r} is too short for a national number")
        cut = area_code_length(text)
        return DialledNumber(raw, form, text[:cut], text[cut:])
    return DialledNumber(raw, form, None, text)


def mobile_digits(raw: str) -> str | None:
    """The 11-digit form of a Chinese mobile number (13877112345), or None for anything else.

    Accepts the caller-id forms networks deliver: ``13877112345``, ``013877112345`` (a mobile of
    another area calling a landline), ``8613877112345``, ``+86 138 7711 2345`` and ``0086…``.
    """
    text = raw if raw.isdigit() else raw.translate(_STRIP)
    if text.startswith("+86"):
        text = text[3:]
    elif len(text) == 15 and text.startswith("0086"):
        text = text[4:]
    elif len(text) == 13 and text.startswith("86"):
        text = text[2:]
    elif len(text) == 12 and text.startswith("01"):
        text = text[1:]
    if len(text) != 11 or text[0] != "1" or not text.isdigit() or not text.isascii():
        return None
    return text


def is_short_code(number: str) -> bool:
    """True for service short codes (110, 12345, 96119) that need no area code.

    Landline numbers (7–8 digits not starting with 1 or 9) belong to one area.
    """
    return len(number) <= 6


def dialled_forms(number: str, area_code: str) -> list[str]:
    """Every form in which a caller may dial ``number`` in ``area_code``.

    Used by the dialplan generator and the property tests so both agree on
    what "all its dialled forms" means.
    """
    trunk = area_code[1:]
    return [number, f"{area_code}{number}", f"+86{trunk}{number}", f"0086{trunk}{number}"]


def line_label(number: str, name: str) -> str:
    """``number name`` for people, without repeating the number when the name already holds it.

    The annex names some lines after their number (``12315市场监管投诉举报热线``): that name alone.
    """
    return name if number in name else f"{number} {name}".strip()
