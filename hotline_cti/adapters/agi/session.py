"""One AGI script run against a peer's replies, without I/O: what to send next, when to wait.

The FastAGI server (asyncio) and the classic AGI driver (blocking pipes) both
run scripts through :class:`ScriptSession`, so the dead-channel rule exists
once: after ``HANGUP``, SIGHUP or a ``511`` reply only the commands res_agi
still runs on a dead channel are sent; the script is told ``511`` for the rest.
(The FastAGI server walks a fixed script by itself only while every reply is a
plain ``200``, when the rule has nothing to do.)
"""

from __future__ import annotations

from collections.abc import Sequence

from hotline_cti.adapters.agi.protocol import DEAD_CHANNEL_COMMANDS, AgiReply, Hangup
from hotline_cti.adapters.agi.scripts import FixedScript, Script, replay

DEAD_REPLY = AgiReply(511, "Command Not Permitted on a dead channel or intercept routine", None, None, "511")


class ScriptSession:
    """Feeds replies to a script and hands out its commands, skipping what a dead channel refuses."""

    __slots__ = ("_next", "_pending", "_script", "dead")

    def __init__(self, script: Script) -> None:
        self._script = replay(script.lines) if isinstance(script, FixedScript) else script
        self._pending: list[AgiReply | Hangup] = []  # rarely more than one; an empty list allocates nothing
        self.dead = False
        self._next = self._advance(None)

    def _advance(self, reply: AgiReply | None) -> str | None:
        try:
            return next(self._script) if reply is None else self._script.send(reply)
        except StopIteration:
            return None

    def hang_up(self) -> None:
        """The caller is gone (classic AGI learns it from SIGHUP, FastAGI from a ``HANGUP`` line)."""
        self.dead = True

    def next_command(self) -> str | None:
        """The command line to send now, or None when the script has finished."""
        while self._next is not None and self.dead and not self._next.upper().startswith(DEAD_CHANNEL_COMMANDS):
            self._next = self._advance(DEAD_REPLY)
        return self._next

    def feed(self, events: Sequence[AgiReply | Hangup]) -> bool:
        """Parsed events from the peer; True once the command in flight has its reply.

        Events after that reply stay queued for the next command.
        """
        if not self._pending:
            if not events:
                return False
            if len(events) == 1 and type(events[0]) is AgiReply:  # the usual: exactly one reply
                reply = events[0]
                if reply.dead_channel:
                    self.dead = True
                self._next = self._advance(reply)
                return True
        self._pending.extend(events)
        while self._pending:
            event = self._pending.pop(0)
            if isinstance(event, Hangup):
                self.dead = True
                continue
            if event.dead_channel:
                self.dead = True
            self._next = self._advance(event)
            return True
        return False
