"""A simulated Asterisk 20 manager (AMI) server for tests and local demos.

It speaks the wire format of Asterisk 20's ``main/manager.c`` and
``apps/app_queue.c``: the ``Asterisk Call Manager/9.0.0`` banner, Login
(``Authentication accepted`` / ``Authentication failed`` then close),
``FullyBooted`` after login, Ping (``Ping: Pong`` + ``Timestamp``), Logoff
(``Response: Goodbye``), event lists (``EventList: start`` ... ``EventList:
Complete`` + ``ListItems``) for QueueStatus and CoreShowChannels, async
Originate (``Originate successfully queued`` then ``OriginateResponse``,
Reason 4 = answered), Redirect (with ExtraChannel), BlindTransfer
(``Transfer invalid`` when the channel is not bridged, a ``BlindTransfer``
event either way), Atxfer (``Atxfer successfully queued``; the
``AttendedTransfer`` event follows later), PlayDTMF with ``Receive`` (the atxfer code ``*2``
received on a channel whose TRANSFER_EXTEN is set starts the same attended transfer),
Getvar / Setvar (a channel's ``variables``), Hangup and UserEvent.

It deliberately has its own tiny parser (not ``hotline_cti``'s), so a bug in
the client's framing cannot hide behind the same bug here.

Test controls: ``emit()`` / ``emit_raw()`` push events or raw bytes to every
logged-in session, ``drop_connections()`` cuts every TCP connection,
``chunk_size`` splits every write into tiny pieces (also inside UTF-8
characters), ``answer_pings`` / ``silent_actions`` / ``drop_on_action`` /
``reject_connections`` script failures, and ``actions`` records every action
received (so a test can prove an Originate was not sent twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotline_cti.records.cdr import CDR_FIELDS

__all__ = ["AmiServer", "RecordedAction", "SimChannel", "SimMember", "SimQueue"]

Fields = list[tuple[str, str]]

STATE_DESC = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
    10: "Unknown",
}


@dataclass
class SimChannel:
    """A channel as the simulator tracks it (what a channel snapshot reports)."""

    name: str
    uniqueid: str
    linkedid: str
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    context: str = "from-trunk"
    exten: str = "s"
    priority: int = 1
    state: int = 6
    language: str = "zh"
    account_code: str = ""
    application: str = ""
    application_data: str = ""
    bridge: str = ""
    created: float = field(default_factory=time.monotonic)
    variables: dict[str, str] = field(default_factory=dict)  # channel variables, read by Getvar

    def snapshot(self, prefix: str = "") -> Fields:
        """Fields of ast_manager_build_channel_state_string_prefix()."""
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.caller_num or "<unknown>"),
            (f"{prefix}CallerIDName", self.caller_name or "<unknown>"),
            (f"{prefix}ConnectedLineNum", self.connected_num or "<unknown>"),
            (f"{prefix}ConnectedLineName", self.connected_name or "<unknown>"),
            (f"{prefix}Language", self.language),
            (f"{prefix}AccountCode", self.account_code),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


@dataclass
class SimMember:
    """A queue member (agent seat)."""

    name: str
    interface: str
    state_interface: str = ""
    membership: str = "dynamic"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    in_call: int = 0
    status: int = 1  # AST_DEVICE_NOT_INUSE
    paused: bool = False
    paused_reason: str = ""
    wrapup_time: int = 0


@dataclass
class SimQueue:
    """An app_queue queue: members, and waiting callers by channel name."""

    name: str
    strategy: str = "rrmemory"
    members: list[SimMember] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    service_level: int = 60


@dataclass(frozen=True)
class RecordedAction:
    """An action as received, for assertions."""

    session: int
    fields: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        """The Action header."""
        return self.get("Action") or ""

    def get(self, key: str) -> str | None:
        """First value of a header, case-insensitive like Asterisk."""
        for k, v in self.fields:
            if k.lower() == key.lower():
                return v
        return None


@dataclass
class _Session:
    id: int
    writer: asyncio.StreamWriter
    outbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    authenticated: bool = False
    events_on: bool = True


def _encode(fields: Iterable[tuple[str, str]]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8") + b"\r\n"


def _parse_callerid(text: str) -> tuple[str, str]:
    """'"Name" <num>' / 'Name <num>' / 'num' -> (name, num), like ast_callerid_parse."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, _, num = text[:-1].partition("<")
        return name.strip().strip('"'), num.strip()
    if text.replace("+", "").isdigit():
        return "", text
    return text, ""


class AmiServer:
    """Asyncio TCP server imitating Asterisk 20's AMI; see the module docstring."""

    def __init__(
        self,
        *,
        username: str = "hotline",
        secret: str = "test-secret",
        version: str = "9.0.0",
        auth_fail_delay: float = 0.0,  # real Asterisk sleeps 1 s before 'Authentication failed'
    ) -> None:
        self.username = username
        self.secret = secret
        self.version = version
        self.auth_fail_delay = auth_fail_delay
        # scripted behaviour
        self.chunk_size: int | None = None
        self.answer_pings = True
        self.send_fully_booted = True
        self.booted_delay = 0.0  # > 0: FullyBooted comes later, as while Asterisk is still starting
        self.fully_booted_sent = 0
        self.silent_actions: set[str] = set()  # lower-case action names never answered
        self.drop_on_action: set[str] = set()  # lower-case action names that cut the connection
        self.reject_connections = 0  # close the next N connections before the banner
        self.cdr_path: Path | None = None  # set: each caller leg's CDR is appended here at its hang-up (cdr_custom)
        self.originate_delay = 0.01
        self.originate_reason = 4
        self.atxfer_delay = 0.01
        self.atxfer_code = "*2"  # features.conf [featuremap] atxfer, as the generator writes it
        # state
        self.channels: dict[str, SimChannel] = {}
        self.queues: dict[str, SimQueue] = {}
        self.actions: list[RecordedAction] = []
        self.connections = 0
        self._sessions: dict[int, _Session] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._chan_seq = itertools.count(1)
        self._epoch = int(time.time())
        self._started = time.time()

    # ------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0 = an ephemeral port, see ``port``)."""
        self._server = await asyncio.start_server(self._handle, host, port)

    @property
    def port(self) -> int:
        """The port actually listened on."""
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener, every session and every scheduled task."""
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AmiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -------------------------------------------------------- test controls

    @property
    def session_count(self) -> int:
        """Connections currently open."""
        return len(self._sessions)

    def actions_named(self, name: str) -> list[RecordedAction]:
        """Every recorded action with this name (case-insensitive)."""
        return [a for a in self.actions if a.name.lower() == name.lower()]

    def emit(self, fields: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """Send one event (fields verbatim, ``Event`` first by convention) to every logged-in session."""
        pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        self.emit_raw(_encode(pairs))

    def emit_raw(self, data: bytes) -> None:
        """Send raw bytes (garbage included) to every logged-in session."""
        for session in self._sessions.values():
            if session.authenticated and session.events_on:
                session.outbox.put_nowait(data)

    def drop_connections(self) -> None:
        """Abort every TCP connection at once, as a crashing Asterisk would."""
        for session in list(self._sessions.values()):
            session.outbox.put_nowait(None)
            session.writer.transport.abort()

    def add_channel(self, name: str, **attrs: str | int) -> SimChannel:
        """Create a channel (emits nothing); attrs are SimChannel fields."""
        uid = f"{self._epoch}.{next(self._chan_seq)}"
        channel = SimChannel(name=name, uniqueid=uid, linkedid=uid)
        for key, value in attrs.items():
            setattr(channel, key, value)
        self.channels[name] = channel
        return channel

    def bridge(self, first: str, second: str) -> str:
        """Put two channels in one basic bridge; returns the bridge id."""
        bridge_id = f"bridge-{next(self._chan_seq):04d}"
        a, b = self.channels[first], self.channels[second]
        a.bridge = b.bridge = bridge_id
        a.connected_num, a.connected_name = b.caller_num, b.caller_name
        b.connected_num, b.connected_name = a.caller_num, a.caller_name
        b.linkedid = a.linkedid
        return bridge_id

    def add_queue(self, name: str, members: Iterable[SimMember] = (), strategy: str = "rrmemory") -> SimQueue:
        """Create a queue with its members."""
        queue = SimQueue(name=name, strategy=strategy, members=list(members))
        self.queues[name] = queue
        return queue

    # ------------------------------------------------------------ sessions

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.reject_connections > 0:
            self.reject_connections -= 1
            writer.transport.abort()
            return
        self.connections += 1
        session = _Session(next(self._ids), writer)
        self._sessions[session.id] = session
        sender = asyncio.create_task(self._send_loop(session))
        session.outbox.put_nowait(f"Asterisk Call Manager/{self.version}\r\n".encode())
        buf = b""
        lines: list[bytes] = []
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                buf += data
                *complete, buf = buf.split(b"\n")
                for raw in complete:
                    line = raw.removesuffix(b"\r")
                    if line:
                        lines.append(line)
                        continue
                    if not lines:
                        continue  # blank lines between actions
                    message, lines = self._fields(lines), []
                    if not await self._process(session, message):
                        return
        except (ConnectionError, OSError):
            pass
        finally:
            self._sessions.pop(session.id, None)
            session.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(sender, timeout=1.0)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _fields(lines: list[bytes]) -> Fields:
        fields: Fields = []
        for line in b"\n".join(lines).decode("utf-8", errors="replace").split("\n"):
            key, sep, value = line.partition(":")
            if sep:  # like Asterisk, lines without a colon are ignored
                fields.append((key.strip(), value.strip()))
        return fields

    async def _send_loop(self, session: _Session) -> None:
        writer = session.writer
        while True:
            data = await session.outbox.get()
            if data is None or writer.is_closing():
                return
            size = self.chunk_size
            try:
                if size:
                    for i in range(0, len(data), size):
                        writer.write(data[i : i + size])
                        await writer.drain()
                        await asyncio.sleep(0)
                else:
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                return

    def _reply(self, session: _Session, fields: Fields) -> None:
        session.outbox.put_nowait(_encode(fields))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _event(self, name: str, privilege: str, fields: Fields) -> None:
        self.emit([("Event", name), ("Privilege", privilege), *fields])

    # ------------------------------------------------------------- actions

    async def _process(self, session: _Session, fields: Fields) -> bool:
        """Handle one action; False ends the session."""
        self.actions.append(RecordedAction(session.id, tuple(fields)))
        m = RecordedAction(session.id, tuple(fields))
        action = (m.get("Action") or "").lower()
        if action in self.drop_on_action:
            session.writer.transport.abort()
            return False
        if action in self.silent_actions:
            return True
        if not action:
            self._reply(session, self._response(m, "Error", "Missing action in request"))
            return True
        if not session.authenticated and action not in ("login", "logoff", "challenge"):
            self._reply(session, self._response(m, "Error", "Permission denied"))
            return True
        handler = getattr(self, f"_act_{action}", None)
        if handler is None:
            self._reply(session, self._response(m, "Error", "Invalid/unknown command"))
            return True
        result: bool = await handler(session, m)
        return result

    @staticmethod
    def _response(m: RecordedAction, status: str, message: str | None = None, listflag: str | None = None) -> Fields:
        """astman_send_response_full(): Response, ActionID, EventList, Message."""
        out: Fields = [("Response", status)]
        if m.get("ActionID"):
            out.append(("ActionID", m.get("ActionID") or ""))
        if listflag:
            out.append(("EventList", listflag))
        if message is not None:
            out.append(("Message", message))
        return out

    @staticmethod
    def _id(m: RecordedAction) -> Fields:
        return [("ActionID", m.get("ActionID") or "")] if m.get("ActionID") else []

    def _list_complete(self, m: RecordedAction, event: str, count: int) -> Fields:
        return [("Event", event), *self._id(m), ("EventList", "Complete"), ("ListItems", str(count))]

    async def _act_login(self, session: _Session, m: RecordedAction) -> bool:
        if session.authenticated:
            self._reply(session, self._response(m, "Success", "Already authenticated"))
            return True
        if m.get("Username") != self.username or m.get("Secret") != self.secret:
            await asyncio.sleep(self.auth_fail_delay)
            self._reply(session, self._response(m, "Error", "Authentication failed"))
            session.outbox.put_nowait(None)
            return False
        session.authenticated = True
        session.events_on = (m.get("Events") or "on").lower() not in ("off", "no", "false")
        self._reply(session, self._response(m, "Success", "Authentication accepted"))
        if self.send_fully_booted and session.events_on:
            if self.booted_delay > 0:
                self._spawn(self._fully_booted_later(session))
            else:
                self._fully_booted(session)
        return True

    def _fully_booted(self, session: _Session) -> None:
        uptime = str(int(time.time() - self._started))
        self.fully_booted_sent += 1
        self._reply(
            session,
            [
                ("Event", "FullyBooted"),
                ("Privilege", "system,all"),
                ("Uptime", uptime),
                ("LastReload", uptime),
                ("Status", "Fully Booted"),
            ],
        )

    async def _fully_booted_later(self, session: _Session) -> None:
        await asyncio.sleep(self.booted_delay)
        if session.id in self._sessions:
            self._fully_booted(session)

    async def _act_logoff(self, session: _Session, m: RecordedAction) -> bool:
        self._reply(session, self._response(m, "Goodbye", "Thanks for all the fish."))
        session.outbox.put_nowait(None)
        return False

    async def _act_ping(self, session: _Session, m: RecordedAction) -> bool:
        if self.answer_pings:
            now = time.time()
            self._reply(session, [("Response", "Success"), *self._id(m), ("Ping", "Pong"), ("Timestamp", f"{now:.6f}")])
        return True

    async def _act_userevent(self, session: _Session, m: RecordedAction) -> bool:
        body = [(k, v) for k, v in m.fields if k.lower() not in ("userevent", "action")]
        self._reply(session, self._response(m, "Success", "Event Sent"))
        self._event("UserEvent", "user,all", [("UserEvent", m.get("UserEvent") or ""), *body])
        return True

    async def _act_queuestatus(self, session: _Session, m: RecordedAction) -> bool:
        self._reply(session, self._response(m, "Success", "Queue status will follow", "start"))
        only = m.get("Queue")
        count = 0
        now = time.monotonic()
        for queue in self.queues.values():
            if only and queue.name != only:
                continue
            self._reply(
                session,
                [
                    ("Event", "QueueParams"),
                    ("Queue", queue.name),
                    ("Max", "0"),
                    ("Strategy", queue.strategy),
                    ("Calls", str(len(queue.callers))),
                    ("Holdtime", "0"),
                    ("TalkTime", "0"),
                    ("Completed", str(queue.completed)),
                    ("Abandoned", str(queue.abandoned)),
                    ("ServiceLevel", str(queue.service_level)),
                    ("ServicelevelPerf", "0.0"),
                    ("ServicelevelPerf2", "0.0"),
                    ("Weight", "0"),
                    *self._id(m),
                ],
            )
            count += 1
            for member in queue.members:
                self._reply(
                    session,
                    [
                        ("Event", "QueueMember"),
                        ("Queue", queue.name),
                        ("Name", member.name),
                        ("Location", member.interface),
                        ("StateInterface", member.state_interface or member.interface),
                        ("Membership", member.membership),
                        ("Penalty", str(member.penalty)),
                        ("CallsTaken", str(member.calls_taken)),
                        ("LastCall", str(member.last_call)),
                        ("LastPause", "0"),
                        ("LoginTime", str(self._epoch)),
                        ("InCall", str(member.in_call)),
                        ("Status", str(member.status)),
                        ("Paused", "1" if member.paused else "0"),
                        ("PausedReason", member.paused_reason),
                        ("Wrapuptime", str(member.wrapup_time)),
                        *self._id(m),
                    ],
                )
                count += 1
            for position, chan_name in enumerate(queue.callers, start=1):
                ch = self.channels.get(chan_name)
                if ch is None:
                    continue
                self._reply(
                    session,
                    [
                        ("Event", "QueueEntry"),
                        ("Queue", queue.name),
                        ("Position", str(position)),
                        ("Channel", ch.name),
                        ("Uniqueid", ch.uniqueid),
                        ("CallerIDNum", ch.caller_num or "<unknown>"),
                        ("CallerIDName", ch.caller_name or "<unknown>"),
                        ("ConnectedLineNum", ch.connected_num or "<unknown>"),
                        ("ConnectedLineName", ch.connected_name or "<unknown>"),
                        ("Wait", str(int(now - ch.created))),
                        ("Priority", "0"),
                        *self._id(m),
                    ],
                )
                count += 1
        self._reply(session, self._list_complete(m, "QueueStatusComplete", count))
        return True

    async def _act_coreshowchannels(self, session: _Session, m: RecordedAction) -> bool:
        self._reply(session, self._response(m, "Success", "Channels will follow", "start"))
        now = time.monotonic()
        for ch in self.channels.values():
            secs = int(now - ch.created)
            duration = f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
            self._reply(
                session,
                [
                    ("Event", "CoreShowChannel"),
                    *self._id(m),
                    *ch.snapshot(),
                    ("Application", ch.application),
                    ("ApplicationData", ch.application_data),
                    ("Duration", duration),
                    ("BridgeId", ch.bridge),
                ],
            )
        self._reply(session, self._list_complete(m, "CoreShowChannelsComplete", len(self.channels)))
        return True

    async def _act_originate(self, session: _Session, m: RecordedAction) -> bool:
        target = m.get("Channel") or ""
        if not target:
            self._reply(session, self._response(m, "Error", "Channel not specified"))
            return True
        if "/" not in target:
            self._reply(session, self._response(m, "Error", "Invalid channel"))
            return True
        if (m.get("Async") or "").lower() in ("true", "yes", "1", "on"):
            self._reply(session, self._response(m, "Success", "Originate successfully queued"))
            self._spawn(self._originate_later(m))
        else:
            await asyncio.sleep(self.originate_delay)
            ok = self._originate_now(m) is not None
            if ok:
                self._reply(session, self._response(m, "Success", "Originate successfully queued"))
            else:
                self._reply(session, self._response(m, "Error", "Originate failed"))
        return True

    def _originate_now(self, m: RecordedAction) -> SimChannel | None:
        if self.originate_reason != 4:
            return None
        name, num = _parse_callerid(m.get("CallerID") or "")
        chan = self.add_channel(
            f"{m.get('Channel')}-{next(self._chan_seq):08x}",
            caller_num=num,
            caller_name=name,
            context=m.get("Context") or "",
            exten=m.get("Exten") or "",
            priority=int(m.get("Priority") or 1),
        )
        self._event("Newchannel", "call,all", chan.snapshot())
        return chan

    async def _originate_later(self, m: RecordedAction) -> None:
        await asyncio.sleep(self.originate_delay)
        chan = self._originate_now(m)
        name, num = _parse_callerid(m.get("CallerID") or "")
        body: Fields = [
            *self._id(m),
            ("Response", "Success" if chan else "Failure"),
            ("Channel", chan.name if chan else m.get("Channel") or ""),
        ]
        if m.get("Application"):
            body += [("Application", m.get("Application") or ""), ("Data", m.get("Data") or "")]
        else:
            body += [("Context", m.get("Context") or ""), ("Exten", m.get("Exten") or "")]
        body += [
            ("Reason", str(self.originate_reason)),
            ("Uniqueid", chan.uniqueid if chan else "<unknown>"),
            ("CallerIDNum", num or "<unknown>"),
            ("CallerIDName", name or "<unknown>"),
        ]
        self._event("OriginateResponse", "call,all", body)

    async def _act_redirect(self, session: _Session, m: RecordedAction) -> bool:
        for header, error in (
            ("Channel", "Channel not specified"),
            ("Context", "Context not specified"),
            ("Exten", "Exten not specified"),
            ("Priority", "Priority not specified"),
        ):
            if not m.get(header):
                self._reply(session, self._response(m, "Error", error))
                return True
        name, extra = m.get("Channel") or "", m.get("ExtraChannel") or ""
        if name not in self.channels:
            self._reply(session, self._response(m, "Error", f"Channel does not exist: {name}"))
            return True
        if extra and extra not in self.channels:
            self._reply(session, self._response(m, "Error", f"ExtraChannel does not exist: {extra}"))
            return True
        self._goto(self.channels[name], m.get("Context") or "", m.get("Exten") or "", m.get("Priority") or "1")
        if extra:
            self._goto(
                self.channels[extra],
                m.get("ExtraContext") or m.get("Context") or "",
                m.get("ExtraExten") or m.get("Exten") or "",
                m.get("ExtraPriority") or m.get("Priority") or "1",
            )
            self._reply(session, self._response(m, "Success", "Dual Redirect successful"))
        else:
            self._reply(session, self._response(m, "Success", "Redirect successful"))
        return True

    def _goto(self, ch: SimChannel, context: str, exten: str, priority: str) -> None:
        ch.bridge = ""
        ch.context, ch.exten = context, exten
        ch.priority = int(priority) if priority.isdigit() else 1

    def _bridge_fields(self, bridge_id: str, prefix: str = "") -> Fields:
        members = sum(1 for c in self.channels.values() if c.bridge == bridge_id)
        return [
            (f"{prefix}BridgeUniqueid", bridge_id),
            (f"{prefix}BridgeType", "basic"),
            (f"{prefix}BridgeTechnology", "simple_bridge"),
            (f"{prefix}BridgeCreator", "<unknown>"),
            (f"{prefix}BridgeName", "<unknown>"),
            (f"{prefix}BridgeNumChannels", str(members)),
            (f"{prefix}BridgeVideoSourceMode", "none"),
        ]

    def _peer(self, ch: SimChannel) -> SimChannel | None:
        if not ch.bridge:
            return None
        return next((c for c in self.channels.values() if c.bridge == ch.bridge and c is not ch), None)

    def _hangup(self, ch: SimChannel, cause: int = 16, text: str = "Normal Clearing") -> None:
        self.channels.pop(ch.name, None)
        if self.cdr_path is not None and ch.uniqueid == ch.linkedid:
            self._write_cdr(ch)
        for queue in self.queues.values():
            if ch.name in queue.callers:
                queue.callers.remove(ch.name)
        self._event("Hangup", "call,all", [*ch.snapshot(), ("Cause", str(cause)), ("Cause-txt", text)])

    def _write_cdr(self, ch: SimChannel) -> None:
        """The caller leg's CDR line, as Asterisk's cdr_custom appends it at the hang-up (columns CDR_FIELDS)."""
        end = time.time()
        start = end - (time.monotonic() - ch.created)
        up = ch.state == 6
        values = {
            "clid": f'"{ch.caller_name}" <{ch.caller_num}>',
            "src": ch.caller_num,
            "dst": ch.exten,
            "dcontext": ch.context,
            "channel": ch.name,
            "lastapp": ch.application,
            "lastdata": ch.application_data,
            "start": f"{start:.6f}",
            "answer": f"{start:.6f}" if up else "",
            "end": f"{end:.6f}",
            "duration": f"{end - start:.6f}",
            "billsec": f"{end - start:.6f}" if up else "0.000000",
            "disposition": "ANSWERED" if up else "NO ANSWER",
            "uniqueid": ch.uniqueid,
            "linkedid": ch.linkedid,
        }
        line = io.StringIO()
        csv.writer(line, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(values.get(f, "") for f in CDR_FIELDS)
        path = self.cdr_path
        assert path is not None
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line.getvalue())

    async def _act_getvar(self, session: _Session, m: RecordedAction) -> bool:
        # manager.c action_getvar(): an unset variable is an empty Value, an unknown channel an error.
        variable, name = m.get("Variable") or "", m.get("Channel") or ""
        if not variable:
            self._reply(session, self._response(m, "Error", "No variable specified"))
        elif name and name not in self.channels:
            self._reply(session, self._response(m, "Error", "No such channel"))
        else:
            value = self.channels[name].variables.get(variable, "") if name else ""
            self._reply(session, [*self._response(m, "Success"), ("Variable", variable), ("Value", value)])
        return True

    async def _act_setvar(self, session: _Session, m: RecordedAction) -> bool:
        # manager.c action_setvar(): an empty Value unsets; a named channel must exist.
        variable, name = m.get("Variable") or "", m.get("Channel") or ""
        if not variable:
            self._reply(session, self._response(m, "Error", "No variable specified"))
        elif name and name not in self.channels:
            self._reply(session, self._response(m, "Error", "No such channel"))
        else:
            if name:
                self.channels[name].variables[variable] = m.get("Value") or ""
            self._reply(session, self._response(m, "Success", "Variable Set"))
        return True

    async def _act_playdtmf(self, session: _Session, m: RecordedAction) -> bool:
        # app_senddtmf.c manager_play_dtmf(); with Receive the digit is queued as received on the channel,
        # and the bridge matches it against the feature codes: the atxfer code (*2) starts an attended
        # transfer to TRANSFER_EXTEN@TRANSFER_CONTEXT (main/bridge_basic.c grab_transfer).
        ch = self.channels.get(m.get("Channel") or "")
        digit = m.get("Digit") or ""
        if ch is None:
            self._reply(session, self._response(m, "Error", "Channel not found"))
            return True
        if not digit:
            self._reply(session, self._response(m, "Error", "No digit specified"))
            return True
        self._reply(session, self._response(m, "Success", "DTMF successfully queued"))
        if (m.get("Receive") or "").lower() in ("true", "yes", "1", "on"):
            keys = ch.variables.get("__received_dtmf", "") + digit[0]
            ch.variables["__received_dtmf"] = keys[-len(self.atxfer_code) :]
            exten = ch.variables.get("TRANSFER_EXTEN", "")
            if keys.endswith(self.atxfer_code) and exten:
                ch.variables["__received_dtmf"] = ""
                context = ch.variables.get("TRANSFER_CONTEXT", "") or ch.context
                self._spawn(self._atxfer_later(ch, exten, context))
        return True

    async def _act_hangup(self, session: _Session, m: RecordedAction) -> bool:
        name = m.get("Channel") or ""
        if not name:
            self._reply(session, self._response(m, "Error", "No channel specified"))
        elif name not in self.channels:
            self._reply(session, self._response(m, "Error", "No such channel"))
        else:
            self._reply(session, self._response(m, "Success", "Channel Hungup"))
            self._hangup(self.channels[name])
        return True

    def _transfer_checks(self, session: _Session, m: RecordedAction) -> SimChannel | None:
        if not m.get("Channel"):
            self._reply(session, self._response(m, "Error", "No channel specified"))
            return None
        if not m.get("Exten"):
            self._reply(session, self._response(m, "Error", "No extension specified"))
            return None
        ch = self.channels.get(m.get("Channel") or "")
        if ch is None:
            self._reply(session, self._response(m, "Error", "Channel specified does not exist"))
        return ch

    async def _act_blindtransfer(self, session: _Session, m: RecordedAction) -> bool:
        ch = self._transfer_checks(session, m)
        if ch is None:
            return True
        exten, context = m.get("Exten") or "", m.get("Context") or ch.context
        peer = self._peer(ch)
        tail: Fields = [("IsExternal", "Yes"), ("Context", context), ("Extension", exten)]
        if peer is None:
            # ast_bridge_transfer_blind() publishes the event even when it fails.
            self._reply(session, self._response(m, "Error", "Transfer invalid"))
            self._event("BlindTransfer", "call,all", [("Result", "Invalid"), *ch.snapshot("Transferer"), *tail])
            return True
        self._reply(session, self._response(m, "Success", "Transfer succeeded"))
        self._event(
            "BlindTransfer",
            "call,all",
            [
                ("Result", "Success"),
                *ch.snapshot("Transferer"),
                *peer.snapshot("Transferee"),
                *self._bridge_fields(ch.bridge),
                *tail,
            ],
        )
        self._goto(peer, context, exten, "1")
        self._hangup(ch)
        return True

    async def _act_atxfer(self, session: _Session, m: RecordedAction) -> bool:
        ch = self._transfer_checks(session, m)
        if ch is None:
            return True
        self._reply(session, self._response(m, "Success", "Atxfer successfully queued"))
        self._spawn(self._atxfer_later(ch, m.get("Exten") or "", m.get("Context") or ch.context))
        return True

    async def _atxfer_later(self, ch: SimChannel, exten: str, context: str) -> None:
        await asyncio.sleep(self.atxfer_delay)
        peer = self._peer(ch)
        if peer is None or ch.name not in self.channels:
            return  # DTMF into an unbridged channel does nothing at all
        seq = next(self._chan_seq)
        # The consultation call is part of the transferer's call: same Linkedid (as on Asterisk 22).
        second = self.add_channel(
            f"Local/{exten}@{context}-{seq:08x};1", context=context, exten=exten, linkedid=ch.linkedid
        )
        target = self.add_channel(
            f"Local/{exten}@{context}-{seq:08x};2", context=context, exten=exten, caller_num=exten, linkedid=ch.linkedid
        )
        self._event("Newchannel", "call,all", second.snapshot())
        self._event("Newchannel", "call,all", target.snapshot())
        orig_bridge = ch.bridge
        self._event(
            "AttendedTransfer",
            "call,all",
            [
                ("Result", "Success"),
                *ch.snapshot("OrigTransferer"),
                *self._bridge_fields(orig_bridge, "Orig"),
                *ch.snapshot("SecondTransferer"),
                ("DestType", "Bridge"),
                ("DestBridgeUniqueid", orig_bridge),
                *peer.snapshot("Transferee"),
                *second.snapshot("TransferTarget"),
                ("IsExternal", "No"),
            ],
        )
        target.bridge = orig_bridge
        peer.connected_num, peer.connected_name = target.caller_num, target.caller_name
        self._hangup(second)
        self._hangup(ch)
