"""How a command says that its database could not be used."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """SQLAlchemy's messages run over several lines with a link; the first says what failed."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
