"""Keep an :class:`~simulators.ami_server.AmiServer`'s channels and queues in step with the simulated PBX.

The PBX only emits events; a client that resyncs after a reconnect asks
``QueueStatus`` and ``CoreShowChannels``. :class:`AmiMirror` is an event sink
that applies each event to the server's state (so those actions answer with
the PBX's live channels, queue members and waiting callers) and then sends it.
"""

from __future__ import annotations

from collections.abc import Callable

from simulators.ami_server import AmiServer, SimChannel, SimMember, SimQueue
from simulators.pbx.amievents import Fields
from simulators.pbx.model import QueueSetup


class AmiMirror:
    """Event sink: update ``server``'s state from the event, then emit it to every AMI session."""

    def __init__(self, server: AmiServer, queue_setup: Callable[[str], QueueSetup]) -> None:
        self.server = server
        self.queue_setup = queue_setup
        self._queue_of: dict[str, str] = {}  # caller channel -> queue it waits in
        self._members: dict[tuple[str, str], SimMember] = {}

    def __call__(self, fields: Fields) -> None:
        """Apply and send one event."""
        data = dict(fields)
        handler = _HANDLERS.get(data.get("Event", ""))
        if handler is not None:
            handler(self, data)
        self.server.emit(fields)

    def _queue(self, name: str) -> SimQueue:
        queue = self.server.queues.get(name)
        if queue is None:
            queue = self.server.add_queue(name, strategy=self.queue_setup(name).strategy)
        return queue

    def _newchannel(self, d: dict[str, str]) -> None:
        self.server.channels[d["Channel"]] = SimChannel(
            name=d["Channel"],
            uniqueid=d["Uniqueid"],
            linkedid=d["Linkedid"],
            caller_num=d["CallerIDNum"],
            context=d["Context"],
            exten=d["Exten"],
            state=int(d["ChannelState"]),
        )

    def _join(self, d: dict[str, str]) -> None:
        self._queue(d["Queue"]).callers.append(d["Channel"])
        self._queue_of[d["Channel"]] = d["Queue"]
        channel = self.server.channels.get(d["Channel"])
        if channel is not None:
            channel.state, channel.application, channel.application_data = 6, "Queue", d["Queue"]

    def _leave(self, d: dict[str, str]) -> None:
        name = self._queue_of.pop(d["Channel"], None)
        if name is not None:
            callers = self.server.queues[name].callers
            if d["Channel"] in callers:
                callers.remove(d["Channel"])
        if d["Event"] == "QueueCallerAbandon":
            self._queue(d["Queue"]).abandoned += 1

    def _connect(self, d: dict[str, str]) -> None:
        channel = self.server.channels.get(d["Channel"])
        if channel is not None:
            channel.connected_num, channel.bridge = d["MemberName"], f"bridge-{d['Uniqueid']}"

    def _complete(self, d: dict[str, str]) -> None:
        self._queue(d["Queue"]).completed += 1
        channel = self.server.channels.get(d["Channel"])
        if channel is not None:
            channel.connected_num, channel.bridge = "", ""

    def _member(self, d: dict[str, str]) -> None:
        key = (d["Queue"], d["Interface"])
        member = self._members.get(key)
        if member is None:
            member = self._members[key] = SimMember(d["MemberName"], d["Interface"], d["StateInterface"])
            self._queue(d["Queue"]).members.append(member)
        member.status = int(d["Status"])
        member.in_call = int(d["InCall"])
        member.calls_taken = int(d["CallsTaken"])
        member.last_call = int(d["LastCall"])
        member.wrapup_time = int(d["Wrapuptime"])

    def _hangup(self, d: dict[str, str]) -> None:
        self._leave({"Event": "Hangup", "Channel": d["Channel"]})
        self.server.channels.pop(d["Channel"], None)


_HANDLERS: dict[str, Callable[[AmiMirror, dict[str, str]], None]] = {
    "Newchannel": AmiMirror._newchannel,
    "QueueCallerJoin": AmiMirror._join,
    "QueueCallerLeave": AmiMirror._leave,
    "QueueCallerAbandon": AmiMirror._leave,
    "AgentConnect": AmiMirror._connect,
    "AgentComplete": AmiMirror._complete,
    "QueueMemberStatus": AmiMirror._member,
    "Hangup": AmiMirror._hangup,
}
