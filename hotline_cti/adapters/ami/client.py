"""Asyncio AMI client: login, ActionID correlation, event lists, keep-alive, reconnect.

Safety rules that shape this module:

* An action is sent once. If the connection drops (or the action times out)
  after it was written, its outcome is unknown and it fails with
  ``ActionUnknownOutcome``; it is never re-sent, because a re-sent Originate
  rings the citizen twice. An action that could not be written at all fails
  with ``NotConnected`` and may safely be retried by the caller.
* After every (re)connection the client waits for ``FullyBooted`` and then
  runs the registered resync hooks (re-read QueueStatus, CoreShowChannels...)
  because events sent while we were away are lost for good.
* Bad input from the wire (malformed messages, failing callbacks) is logged
  with caller numbers masked and skipped; it never stops the event flow.
* Credentials come from the environment or explicit arguments only.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotline_cti.adapters.ami.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    AmiParser,
    AmiProtocolError,
    Banner,
    Malformed,
    Message,
    encode_message,
    mask_numbers,
)
from hotline_cti.logthrottle import PeerWarnings

__all__ = [
    "ActionResult",
    "ActionTimeout",
    "ActionUnknownOutcome",
    "AmiActionError",
    "AmiClient",
    "AmiError",
    "AmiSettings",
    "AuthenticationFailed",
    "EventCallback",
    "NotConnected",
    "ResyncHook",
    "backoff_delays",
]

log = logging.getLogger(__name__)

EventCallback = Callable[[Message], Awaitable[None] | None]
ResyncHook = Callable[["AmiClient"], Awaitable[None]]

ENV_HOST = "HOTLINE_AMI_HOST"
ENV_PORT = "HOTLINE_AMI_PORT"
ENV_USER = "HOTLINE_AMI_USER"
ENV_SECRET = "HOTLINE_AMI_SECRET"
READ_SIZE = 8192  # bytes parsed per loop step: 64 KB (~120 events) would hold the loop for several ms
DISPATCH_SLICE = 16  # events handed to subscribers between two yields to the event loop
DISPATCH_BACKLOG = 2000  # events queued for subscribers before the reader waits for them
BACKLOG_WAIT_MAX = 0.5  # seconds the reader waits at most (an awaiting subscriber must not stall it)


class AmiError(Exception):
    """Base class of every AMI client error."""


class NotConnected(AmiError):
    """The action was NOT sent (no connection within the timeout); retrying is safe."""


class ActionUnknownOutcome(AmiError):
    """The action was sent but no answer came (drop or timeout): it may or may not have run.

    Never retried automatically; check the state (e.g. CoreShowChannels)
    before doing anything that could act twice.
    """


class ActionTimeout(ActionUnknownOutcome):
    """No complete answer within the action's timeout."""


class AuthenticationFailed(AmiError):
    """Asterisk answered the Login with an error (wrong user or secret)."""


class AmiActionError(AmiError):
    """Asterisk answered the action with ``Response: Error``."""

    def __init__(self, action: str, response: Message) -> None:
        self.action = action
        self.response = response
        super().__init__(f"AMI {action} failed: {response.get('Message', '(no message)')}")


@dataclass(frozen=True)
class AmiSettings:
    """Connection and timing settings; build with ``from_env`` in production."""

    host: str
    username: str
    secret: str = field(repr=False)
    port: int = 5038
    action_timeout: float = 10.0
    connect_timeout: float = 5.0
    ping_interval: float = 20.0
    ping_timeout: float = 5.0
    fully_booted_timeout: float = 10.0
    logoff_timeout: float = 2.0
    backoff_initial: float = 0.5
    backoff_factor: float = 2.0
    backoff_max: float = 30.0
    backoff_jitter: float = 0.1  # fraction of each delay added at random, so many clients do not stampede
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    mask_numbers: bool = True  # mask caller numbers in logs (personal data)
    # The event classes asked for at login: records, transfers and the wallboard use call, agent, user
    # (UserEvent), cdr and system (FullyBooted). The dialplan class (Newexten, VarSet: most of a busy
    # PBX's events) is left out, so the events service keeps up with a load (tests/asterisk/test_asterisk_load.py).
    events: str = "call,agent,user,cdr,system"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AmiSettings:
        """Read HOTLINE_AMI_HOST/PORT/USER/SECRET; keyword overrides win.

        Raises ``ValueError`` naming the missing or bad variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, var in (("host", ENV_HOST), ("username", ENV_USER), ("secret", ENV_SECRET)):
            if name in overrides:
                continue
            if not env.get(var):
                raise ValueError(f"environment variable {var} is not set")
            values[name] = env[var]
        if "port" not in overrides and env.get(ENV_PORT):
            try:
                values["port"] = int(env[ENV_PORT])
            except ValueError:
                raise ValueError(f"{ENV_PORT} must be an integer, got {env[ENV_PORT]!r}") from None
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The answer to one action: the response plus, for event lists, the items.

    ``events`` holds the list items (or the awaited follow-up event, e.g.
    OriginateResponse); ``complete`` is the ``*Complete`` event of a list.
    Indexing reads the response: ``result["Message"]``.
    """

    response: Message
    events: tuple[Message, ...] = ()
    complete: Message | None = None

    def __getitem__(self, key: str) -> str:
        return self.response[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        """Header of the response, or ``default``."""
        return self.response.get(key, default)

    @property
    def success(self) -> bool:
        """True when Asterisk answered ``Response: Success``."""
        return self.response.get("Response", "").lower() == "success"


def backoff_delays(
    initial: float, factor: float, maximum: float, jitter: float = 0.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Endless reconnect delays: initial, initial*factor, ... capped at maximum, plus jitter."""
    delay = initial
    pick = rng.random if rng is not None else random.random
    while True:
        yield min(delay, maximum) * (1.0 + jitter * pick())
        delay = min(delay * factor, maximum)


@dataclass
class _Pending:
    action: str
    future: asyncio.Future[ActionResult]
    wait_event: str | None = None
    response: Message | None = None
    events: list[Message] = field(default_factory=list)
    complete: Message | None = None
    is_list: bool = False


@dataclass
class _Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parser: AmiParser
    version: str = ""
    booted: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Future[None] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    bytes_read: int = 0  # every byte Asterisk sent on this connection (the keep-alive's sign of life)


class AmiClient:
    """One logical AMI connection that survives drops.

    Usage::

        client = AmiClient(AmiSettings.from_env())
        client.on("QueueCallerJoin", on_join)
        client.add_resync_hook(reload_queues)
        await client.connect()
        result = await client.action("QueueStatus")   # result.events: the list
        ...
        await client.close()
    """

    def __init__(self, settings: AmiSettings) -> None:
        self.settings = settings
        # Garbage from a broken or hostile Asterisk: the first few warnings a minute, then a summary;
        # only the lines logged are masked (as settings.mask_numbers says) and cut short.
        self._peer = f"AMI {settings.host}:{settings.port}"
        self._warnings = PeerWarnings(log, mask=settings.mask_numbers)
        self._subscribers: dict[str, list[EventCallback]] = {}
        self._resync_hooks: list[ResyncHook] = []
        self._pending: dict[str, _Pending] = {}
        self._id_prefix = uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)
        self._session: _Session | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._dispatch_queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._room = asyncio.Event()  # clear while the reader waits for the dispatcher to catch up
        self._room.set()
        self._dispatcher: asyncio.Task[None] | None = None
        self.version: str = ""
        self.connections = 0  # successful logins, for monitoring
        self.reconnect_delays: list[float] = []  # delays slept before reconnect attempts

    # ------------------------------------------------------------------ API

    @property
    def connected(self) -> bool:
        """True while logged in and usable."""
        return self._ready.is_set()

    def on(self, event: str, callback: EventCallback) -> None:
        """Subscribe ``callback`` (sync or async) to an event name, or ``'*'`` for all events."""
        self._subscribers.setdefault(event.lower(), []).append(callback)

    def off(self, event: str, callback: EventCallback) -> None:
        """Remove a subscription made with ``on``; unknown ones are ignored."""
        with contextlib.suppress(ValueError):
            self._subscribers.get(event.lower(), []).remove(callback)

    def add_resync_hook(self, hook: ResyncHook) -> None:
        """Run ``hook(client)`` after every login (first and reconnects), once FullyBooted arrived."""
        self._resync_hooks.append(hook)

    async def connect(self) -> None:
        """Connect and log in; raises on the first failure, reconnects by itself afterwards."""
        if self._supervisor is not None:
            raise RuntimeError("AmiClient.connect() called twice")
        self._closing = False
        self._warnings.schedule = asyncio.get_running_loop().call_later  # summaries when a window ends
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="ami-dispatch")
        try:
            session = await self._open_session()
        except BaseException:
            await self._stop_dispatcher()
            raise
        self._supervisor = asyncio.create_task(self._supervise(session), name="ami-supervisor")

    async def close(self) -> None:
        """Log off, stop every task and fail pending actions. Safe to call twice."""
        if self._closing and self._supervisor is None and self._dispatcher is None:
            return
        self._closing = True
        session = self._session
        if session is not None and self._ready.is_set():
            with contextlib.suppress(AmiError, OSError):
                await self.action("Logoff", timeout=self.settings.logoff_timeout, check=False)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        # The supervisor may have been cut short mid-teardown or mid-reconnect:
        # tear down both the session we logged off and any newer one.
        for leftover in {id(s): s for s in (session, self._session) if s is not None}.values():
            await self._teardown(leftover, "client closed")
        await self._stop_dispatcher()

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def action(
        self,
        name: str,
        fields: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
        wait_event: str | None = None,
    ) -> ActionResult:
        """Send one action and wait for its answer (all list items for event lists).

        ``wait_event`` also waits for a follow-up event carrying the same
        ActionID (``OriginateResponse`` for an async Originate). Raises
        ``NotConnected`` (not sent), ``ActionTimeout`` / ``ActionUnknownOutcome``
        (sent, outcome unknown) or, with ``check``, ``AmiActionError``.
        """
        limit = self.settings.action_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), timeout=limit)
            except TimeoutError:
                raise NotConnected(f"AMI {name} not sent: no connection within {limit:g}s") from None
        return await self._send(name, fields, deadline=deadline, check=check, wait_event=wait_event)

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        ring_timeout: float = 30.0,
        extra: Mapping[str, str] | None = None,
    ) -> Message:
        """Async Originate that waits for its OriginateResponse (Reason 4 = answered).

        Times out after ``ring_timeout`` plus the action timeout rather than
        waiting forever. Returns the OriginateResponse event.
        """
        fields: list[tuple[str, str]] = [
            ("Channel", channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", str(priority)),
            ("Timeout", str(int(ring_timeout * 1000))),
            ("Async", "true"),
        ]
        if caller_id:
            fields.append(("CallerID", caller_id))
        for key, value in (variables or {}).items():
            fields.append(("Variable", f"{key}={value}"))
        fields.extend((extra or {}).items())
        result = await self.action(
            "Originate",
            _FieldList(fields),
            timeout=ring_timeout + self.settings.action_timeout,
            wait_event="OriginateResponse",
        )
        return result.events[-1]

    # ------------------------------------------------------------ internals

    def _mask(self, text: str) -> str:
        return mask_numbers(text) if self.settings.mask_numbers else text

    async def _send(
        self,
        name: str,
        fields: Mapping[str, str] | None,
        *,
        deadline: float,
        check: bool,
        wait_event: str | None,
    ) -> ActionResult:
        session = self._session
        if session is None:
            raise NotConnected(f"AMI {name} not sent: not connected")
        action_id = f"{self._id_prefix}-{next(self._ids)}"
        pairs: list[tuple[str, str]] = [("Action", name), ("ActionID", action_id)]
        for key, value in _pairs(fields):
            if key.lower() not in ("action", "actionid"):
                pairs.append((key, value))
        data = encode_message(pairs)  # ValueError on CR/LF injection, before anything is sent
        loop = asyncio.get_running_loop()
        pending = _Pending(action=name, future=loop.create_future(), wait_event=wait_event)
        # Registered before writing: the answer may arrive before write() returns.
        self._pending[action_id] = pending
        try:
            try:
                session.writer.write(data)
                await session.writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                self._pending.pop(action_id, None)
                if not pending.future.done():
                    pending.future.cancel()
                # Bytes may have reached the kernel buffer: outcome unknown.
                raise ActionUnknownOutcome(f"AMI {name} ({action_id}): connection lost while sending") from exc
            remaining = max(0.0, deadline - loop.time())
            try:
                result = await asyncio.wait_for(asyncio.shield(pending.future), timeout=remaining)
            except TimeoutError:
                raise ActionTimeout(
                    f"AMI {name} ({action_id}): no complete answer within the timeout; it may have run"
                ) from None
        finally:
            self._pending.pop(action_id, None)
            if not pending.future.done():
                pending.future.cancel()
        if check and result.response.get("Response", "").lower() == "error":
            raise AmiActionError(name, result.response)
        return result

    async def _open_session(self) -> _Session:
        s = self.settings
        reader, writer = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), timeout=s.connect_timeout)
        session = _Session(reader, writer, AmiParser(expect_banner=True, max_message_bytes=s.max_message_bytes))
        session.done = asyncio.get_running_loop().create_future()
        self._session = session
        try:
            await asyncio.wait_for(self._read_banner(session), timeout=s.connect_timeout)
            session.tasks.append(asyncio.create_task(self._read_loop(session), name="ami-reader"))
            login = await self._send(
                "Login",
                {"Username": s.username, "Secret": s.secret, "Events": s.events},
                deadline=asyncio.get_running_loop().time() + s.action_timeout,
                check=False,
                wait_event=None,
            )
            if not login.success:
                raise AuthenticationFailed(
                    f"AMI login as {s.username!r} on {s.host}:{s.port} refused: {login.get('Message')}"
                )
            try:
                await asyncio.wait_for(session.booted.wait(), timeout=s.fully_booted_timeout)
            except TimeoutError:
                # FullyBooted needs 'system' read permission; do not hang without it.
                log.warning(
                    "AMI: no FullyBooted within %gs (check 'read = system' for the user)", s.fully_booted_timeout
                )
            self.connections += 1
            self._ready.set()
            session.tasks.append(asyncio.create_task(self._keepalive(session), name="ami-keepalive"))
            log.info("AMI connected to %s:%s (Asterisk Call Manager/%s)", s.host, s.port, session.version)
            await self._run_resync_hooks()
        except BaseException as exc:
            reason = "login failed" if isinstance(exc, AuthenticationFailed) else f"setup failed: {exc!r}"
            await self._teardown(session, reason)
            raise
        return session

    async def _read_banner(self, session: _Session) -> None:
        while True:
            chunk = await session.reader.read(4096)
            if not chunk:
                raise ConnectionError("AMI connection closed before the banner")
            items = session.parser.feed(chunk)
            if items:
                first = items[0]
                if isinstance(first, Banner):
                    session.version = first.version
                    self.version = first.version
                for item in items[1:]:
                    self._handle_item(session, item)
                return

    async def _run_resync_hooks(self) -> None:
        for hook in list(self._resync_hooks):
            try:
                await hook(self)
            except Exception:
                log.exception("AMI resync hook %r failed", getattr(hook, "__qualname__", hook))

    async def _supervise(self, session: _Session) -> None:
        s = self.settings
        while not self._closing:
            assert session.done is not None
            await session.done  # reader EOF, keep-alive failure
            await self._teardown(session, "connection lost")
            delays = backoff_delays(s.backoff_initial, s.backoff_factor, s.backoff_max, s.backoff_jitter)
            while not self._closing:
                delay = next(delays)
                self.reconnect_delays.append(delay)
                log.warning("AMI: reconnecting in %.2fs", delay)
                await asyncio.sleep(delay)
                try:
                    session = await self._open_session()
                    break
                except AuthenticationFailed as exc:
                    log.error("%s; will retry", exc)
                except (OSError, TimeoutError, AmiProtocolError, AmiError) as exc:
                    log.warning("AMI reconnect failed: %r", exc)
                except Exception:
                    # Never let the supervisor die: that would end reconnection for good.
                    log.exception("AMI reconnect failed unexpectedly")

    async def _teardown(self, session: _Session, reason: str) -> None:
        if self._session is session:
            self._session = None
            self._ready.clear()
        current = asyncio.current_task()
        for task in session.tasks:
            if task is not current:
                task.cancel()
        for task in session.tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        session.tasks.clear()
        if session.done is not None and not session.done.done():
            session.done.set_result(None)
        session.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await session.writer.wait_closed()
        # Everything still pending was written on this connection: outcome unknown.
        for action_id, pending in list(self._pending.items()):
            self._pending.pop(action_id, None)
            if not pending.future.done():
                pending.future.set_exception(
                    ActionUnknownOutcome(
                        f"AMI {pending.action} ({action_id}): {reason} before the answer; it may have run"
                        " and is not re-sent"
                    )
                )
                # Nobody may be awaiting any more (e.g. cancelled caller): avoid "never retrieved".
                pending.future.exception()

    def _lost(self, session: _Session) -> None:
        if session.done is not None and not session.done.done():
            session.done.set_result(None)

    async def _read_loop(self, session: _Session) -> None:
        try:
            while True:
                chunk = await session.reader.read(READ_SIZE)
                if not chunk:
                    (log.debug if self._closing else log.warning)("AMI: connection closed by Asterisk")
                    break
                session.bytes_read += len(chunk)
                for item in session.parser.feed(chunk):
                    self._handle_item(session, item)
                if self._dispatch_queue.qsize() >= DISPATCH_BACKLOG:
                    # Backpressure: read no further than subscribers keep up with (TCP holds the rest in Asterisk),
                    # so a burst is not parsed into memory all at once.
                    self._room.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), BACKLOG_WAIT_MAX)
                else:
                    # read() returns at once while data is buffered: yield, or a burst is parsed in one loop step.
                    await asyncio.sleep(0)
        except (ConnectionError, OSError) as exc:
            log.warning("AMI: read failed: %r", exc)
        finally:
            self._lost(session)

    async def _keepalive(self, session: _Session) -> None:
        """Ping every ``ping_interval``; reconnect when a Ping goes unanswered AND nothing else arrived.

        Under load the Pong queues behind thousands of events (Asterisk answers in order, and the reader
        pauses while the dispatcher catches up), so a late Pong alone is not a dead link: reconnecting
        then would lose every event of the calls that start and end before the resync.
        """
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval)
            if self._session is not session:
                return
            before = session.bytes_read
            try:
                await self._send(
                    "Ping",
                    None,
                    deadline=asyncio.get_running_loop().time() + s.ping_timeout,
                    check=True,
                    wait_event=None,
                )
            except ActionTimeout as exc:
                await asyncio.sleep(0)  # let the reader take what is already buffered
                if session.bytes_read != before or not self._room.is_set():
                    log.warning(
                        "AMI keep-alive: no Pong within %gs, but events are still arriving (a backlog): connection kept",
                        s.ping_timeout,
                    )
                    continue
                log.warning("AMI keep-alive failed (%s); reconnecting", exc)
                self._lost(session)
                return
            except AmiError as exc:
                log.warning("AMI keep-alive failed (%s); reconnecting", exc)
                self._lost(session)
                return

    def _handle_item(self, session: _Session, item: Banner | Message | Malformed) -> None:
        if isinstance(item, Banner):
            self._warnings.warning(self._peer, "AMI: unexpected second banner %r ignored", item.version)
            return
        if isinstance(item, Malformed):
            self._warnings.warning(self._peer, "AMI: skipped malformed message (%s): %r", item.reason, item.text)
            action_id = item.get("ActionID")
            pending = self._pending.get(action_id) if action_id else None
            if pending is not None and pending.response is None and not pending.future.done():
                pending.future.set_exception(
                    ActionUnknownOutcome(f"AMI {pending.action} ({action_id}): malformed answer: {item.reason}")
                )
            return
        if item.kind == "response":
            self._on_response(item)
        elif item.kind == "event":
            if item.name.lower() == "fullybooted":
                session.booted.set()
            self._on_event(item)
            self._dispatch_queue.put_nowait(item)
        else:
            self._warnings.warning(
                self._peer, "AMI: skipped message that is neither event nor response: %r", item.to_text()
            )

    def _on_response(self, message: Message) -> None:
        action_id = message.action_id
        pending = self._pending.get(action_id) if action_id else None
        if pending is None:
            log.debug("AMI: response for unknown ActionID %r dropped", action_id)
            return
        pending.response = message
        if message.get("Response", "").lower() == "error":
            self._finish(pending)
        elif message.get("EventList", "").lower() == "start":
            pending.is_list = True
            if pending.complete is not None:
                self._finish(pending)
        elif pending.wait_event is None or self._has_wait_event(pending):
            self._finish(pending)

    def _on_event(self, message: Message) -> None:
        action_id = message.action_id
        pending = self._pending.get(action_id) if action_id else None
        if pending is None:
            return
        list_flag = message.get("EventList", "").lower()
        if list_flag in ("complete", "cancelled") or (
            pending.is_list and message.name.lower().endswith("complete") and "EventList" not in message
        ):
            pending.complete = message
            if pending.response is not None:
                self._finish(pending)
            return
        pending.events.append(message)
        if pending.wait_event and pending.response is not None and self._has_wait_event(pending):
            self._finish(pending)

    @staticmethod
    def _has_wait_event(pending: _Pending) -> bool:
        wanted = (pending.wait_event or "").lower()
        return any(e.name.lower() == wanted for e in pending.events)

    @staticmethod
    def _finish(pending: _Pending) -> None:
        if pending.future.done() or pending.response is None:
            return
        pending.future.set_result(ActionResult(pending.response, tuple(pending.events), pending.complete))

    async def _dispatch_loop(self) -> None:
        dispatched = 0
        while True:
            message = await self._dispatch_queue.get()  # no suspension while events are queued
            if message is None:
                return
            dispatched += 1
            if not self._room.is_set() and self._dispatch_queue.qsize() <= DISPATCH_BACKLOG // 2:
                self._room.set()
            if dispatched % DISPATCH_SLICE == 0:
                # Let FastAGI sessions in between: a burst of events must not hold up a routing decision.
                await asyncio.sleep(0)
            callbacks = [*self._subscribers.get(message.name.lower(), ()), *self._subscribers.get("*", ())]
            for callback in callbacks:
                try:
                    outcome = callback(message)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    log.exception(
                        "AMI: subscriber %r failed on %s event (skipped)",
                        getattr(callback, "__qualname__", callback),
                        message.name,
                    )

    async def _stop_dispatcher(self) -> None:
        if self._dispatcher is None:
            return
        self._dispatch_queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._dispatcher), timeout=1.0)
        except TimeoutError:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        self._dispatcher = None


class _FieldList(Mapping[str, str]):
    """Ordered fields that may repeat a key (Originate's several ``Variable`` lines)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __getitem__(self, key: str) -> str:
        for k, v in self.pairs:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)


def _pairs(fields: Mapping[str, str] | None) -> list[tuple[str, str]]:
    if fields is None:
        return []
    if isinstance(fields, _FieldList):
        return list(fields.pairs)
    return [(k, str(v)) for k, v in fields.items()]
