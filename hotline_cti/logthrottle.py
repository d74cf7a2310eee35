"""Warnings about one peer, rate-limited and summarised, so hostile peers cannot flood the log.

A fault run sent 12,844 hostile FastAGI inputs and got a warning of up to 3 KB for each: 9,683 lines,
2.3 MB in 3 minutes, burying anything else. Now each peer gets its first :attr:`PeerWarnings.burst`
warnings per window in full (cut to :attr:`PeerWarnings.max_chars`), then one line when the window
is over: ``peer X: N more warnings suppressed in the last 60 s``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from hotline_cti.privacy import mask_numbers

OTHER_PEERS = "(other peers)"  # where warnings go once max_peers peers are counted in one window
# Digits, signs and separators at a cut: they may be half a caller number, which the masker would miss.
_HALF_NUMBER = re.compile(r"[0-9+()\- \t]+$")


@dataclass(slots=True)
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0


def shorten(text: str, max_chars: int, *, mask: bool = True) -> str:
    """``text`` masked (caller numbers) and cut to ``max_chars``, saying how much was cut."""
    hide = mask_numbers if mask else str
    if len(text) <= max_chars:
        return hide(text)
    # Masking a 2 MB line costs; cut first, a margin beyond what is kept, without half a number at the cut.
    head = _HALF_NUMBER.sub("", text[: max_chars * 2])
    return f"{hide(head)[:max_chars]}… ({len(text) - max_chars} more characters)"


class PeerWarnings:
    """Rate-limited warnings keyed by peer (an address, or "AMI host:port")."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        window: float = 60.0,
        max_chars: int = 300,
        max_peers: int = 1000,
        mask: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.mask = mask  # caller numbers masked (off only where the operator turned masking off)
        self.burst = burst
        self.window = window
        self.max_chars = max_chars
        self.max_peers = max_peers
        self.clock = clock
        self._peers: dict[str, _Window] = {}
        self.suppressed_total = 0
        # Set by a caller on an event loop (e.g. loop.call_later): the summary then comes when the
        # window ends, not only with the peer's next warning.
        self.schedule: Callable[[float, Callable[[], None]], object] | None = None

    def warning(self, peer: str, message: str, *args: object) -> None:
        """Log ``message % args`` about ``peer`` unless that peer has had its share this window."""
        now = self.clock()
        state = self._peers.get(peer)
        if state is not None and now - state.start >= self.window:
            self._summarise(peer, state)
            state = None
        if state is None:
            if len(self._peers) >= self.max_peers and peer != OTHER_PEERS:
                self.flush()  # make room from windows that are over
                if len(self._peers) >= self.max_peers:
                    # Many addresses at once (a spoofed flood): one shared budget, the peer named in the line.
                    self.warning(OTHER_PEERS, "%s: " + message, peer, *args)
                    return
            state = self._peers[peer] = _Window(now)
        if state.logged >= self.burst:
            state.suppressed += 1
            self.suppressed_total += 1
            if state.suppressed == 1 and self.schedule is not None:
                self.schedule(max(0.0, state.start + self.window - now), self.flush)
            return
        state.logged += 1
        text = message % args if args else message
        self.logger.warning("%s", shorten(text, self.max_chars, mask=self.mask))

    def flush(self, *, force: bool = False) -> None:
        """Summarise and forget the peers whose window is over (all of them with ``force``, e.g. at close)."""
        now = self.clock()
        for peer, state in list(self._peers.items()):
            if force or now - state.start >= self.window:
                self._summarise(peer, state)

    def _summarise(self, peer: str, state: _Window) -> None:
        del self._peers[peer]
        if state.suppressed:
            seconds = min(self.window, self.clock() - state.start)
            self.logger.warning(
                "peer %s: %d more warnings suppressed in the last %.0f s", peer, state.suppressed, seconds
            )
