"""One AGI script run against the replies, without I/O: the command line to send first, and after each reply.

The FastAGI server (asyncio) and the classic AGI driver (blocking pipes) both run scripts through
:class:`ScriptSession`, beside an :class:`~hotline_cti.adapters.agi.connection.AgiConnection` that keeps the
protocol: the phase, and the dead-channel rule (a command a dead channel refuses is answered ``511`` by the
connection itself, and the script is told so like any reply). A fixed script (``route``) is walked by index
over its encoded lines, with no generator to resume; a dialogue is a generator that reads each reply.
"""

from __future__ import annotations

from hotline_cti.adapters.agi.protocol import AgiReply
from hotline_cti.adapters.agi.scripts import Dialogue, FixedScript, Script


class ScriptSession:
    """A script's command lines (encoded, each ending in a newline), one per reply."""

    __slots__ = ("_dialogue", "_index", "_wire")

    def __init__(self, script: Script) -> None:
        self._wire: tuple[bytes, ...] | None = None
        self._dialogue: Dialogue | None = None
        if isinstance(script, FixedScript):
            self._wire = script.wire
        else:
            self._dialogue = script
        self._index = 0  # the fixed script's line in flight

    def first(self) -> bytes | None:
        """The first command line, or None for a script with none."""
        wire = self._wire
        if wire is not None:
            return wire[0] if wire else None
        assert self._dialogue is not None
        return _line(self._dialogue, None)

    @property
    def final(self) -> bool:
        """Whether the line last handed out is a fixed script's last: nothing depends on its reply.

        A dialogue reads every reply, so its lines are never final.
        """
        wire = self._wire
        return wire is not None and self._index + 1 >= len(wire)

    def after(self, reply: AgiReply) -> bytes | None:
        """The command line to send after ``reply`` to the one in flight, or None when the script is done."""
        wire = self._wire
        if wire is not None:
            index = self._index + 1
            if index < len(wire):
                self._index = index
                return wire[index]
            return None
        assert self._dialogue is not None
        return _line(self._dialogue, reply)


def _line(dialogue: Dialogue, reply: AgiReply | None) -> bytes | None:
    try:
        command = next(dialogue) if reply is None else dialogue.send(reply)
    except StopIteration:
        return None
    return command.encode() + b"\n"
