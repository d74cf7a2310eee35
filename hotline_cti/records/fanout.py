"""One record builder per AMI link, its outputs handed to everyone who keeps or shows them.

The events service's pipeline feeds the builder (with the caller-number policy) and submits what it
finishes to the writer, which commits to the calls/transfers tables and the outbox MQTT is published
from; the wallboard listens here for the same records and reads the same calls in progress. So every
AMI event is folded into call records once, under one policy, and both see the same calls.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence

from hotline_cti.records.builder import Output, RecordBuilder
from hotline_cti.records.model import CallRecord

__all__ = ["Listener", "RecordFanout"]

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[Output]], object]  # what it returns is ignored


class RecordFanout:
    """A :class:`RecordBuilder` and the listeners of what it finishes. No I/O of its own."""

    def __init__(self, builder: RecordBuilder) -> None:
        self.builder = builder
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Hand every later batch of outputs to ``listener`` (in the order listeners were added)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop handing outputs to ``listener`` (unknown: nothing happens)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def publish(self, outputs: Sequence[Output]) -> None:
        """Hand ``outputs`` to every listener; one that raises is logged and the others still get them."""
        if not outputs:
            return
        for listener in list(self._listeners):
            try:
                listener(outputs)
            except Exception:
                log.exception("records: a listener failed on %d output(s)", len(outputs))

    def feed(self, message: Mapping[str, str], at: dt.datetime | None = None) -> list[Output]:
        """Fold one AMI event into the builder and publish what it finished (for links without a writer)."""
        outputs = self.builder.feed(message, at)
        self.publish(outputs)
        return outputs

    @property
    def skipped(self) -> int:
        """Malformed events the builder logged and skipped."""
        return self.builder.skipped

    def in_progress(self) -> list[CallRecord]:
        """The calls still up, as records so far (copies)."""
        return self.builder.snapshot()
