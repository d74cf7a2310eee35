"""Naming rules the routing core, the dialplan generator and the checks must agree on.

Each rule is written once, here: the Asterisk queue names a decision carries are the ones
queues.conf defines, and the centre without a city is the region's own (the fallback's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

EXPERT_INFIX = "-expert-"  # tells an expert-seat queue from a centre's queue by name


class CentreLike(Protocol):
    """A 12345 centre as the config describes it (``hotline_cti.config.schema.Centre``)."""

    @property
    def id(self) -> str: ...
    @property
    def city(self) -> str | None: ...


def queue_name(centre: str, queue_id: str) -> str:
    """Asterisk name of a 12345 queue at a centre: ``gx-general``."""
    return f"{centre}-{queue_id}"


def expert_queue_name(centre: str, group: str) -> str:
    """Asterisk name of an expert-seat queue: ``gx-expert-e12315``."""
    return f"{centre}{EXPERT_INFIX}{group}"


def default_centre(centres: Iterable[CentreLike]) -> str:
    """The region-level centre (自治区/省级12345): the one without a city.

    The config checks guarantee exactly one; StopIteration here means an unchecked config.
    """
    return next(c.id for c in centres if c.city is None)
