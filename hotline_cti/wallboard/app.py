"""The wallboard web application (aiohttp): pages, SSE stream, JSON state, login and supervisor actions.

Routes::

    GET  /login, POST /login, POST /logout     anyone
    GET  /, /merger                             logged in (anonymous -> 302 /login?next=...)
    GET  /events (SSE), /api/state (JSON)       logged in (anonymous -> 401)
    POST /api/ack {"id"}                        supervisor (viewer -> 403)
    POST /api/thresholds {"answer_target", "wait_alert"}   supervisor
    POST /api/agent {"agent", "action", "reason"}           supervisor (log in / out, pause, unpause)
    GET  /api/recordings/{call_id}              supervisor: the call's recording (audio, Range requests)
    POST /api/spy {"target", "mode"}            supervisor: listen / whisper / barge from their own phone
    GET  /static/wallboard.css, /static/wallboard.js       anyone

A wall with no Asterisk link (the region centre's, ``Hub.linked`` False) refuses what needs one — agent
commands, listening in, recordings on a node's disk — with 409 and a JSON reason, audited, and its page does
not offer them.

Supervisor POSTs must carry ``X-Requested-With: wallboard`` (a header a cross-site form cannot set),
and the session cookie is HttpOnly + SameSite=Strict. Logins are rate limited and locked out per name and
per address (:mod:`~hotline_cti.wallboard.throttle`), the password hash runs in a small thread pool (never on
the event loop, which also serves the MQTT commands in ``serve``), and a cookie is good only while its
server-side session lives (:mod:`~hotline_cti.wallboard.sessions`). Logins, logouts and supervisor actions
are audited (:class:`~hotline_cti.records.actions.ActionRecord`) when an audit sink is given.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web

from hotline_cti.config.schema import is_agent_id
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.actions import ActionRecord, ActionSink
from hotline_cti.records.actions import audit as audit_action
from hotline_cti.records.agent_states import COMMANDS as AGENT_ACTIONS
from hotline_cti.records.spy import SpyMode, SpyRequest
from hotline_cti.storage.recordings import content_type as recording_type
from hotline_cti.wallboard import assets
from hotline_cti.wallboard.auth import Session, SessionSigner, User, UsersSource, check_password
from hotline_cti.wallboard.hub import Hub
from hotline_cti.wallboard.recordings import CALL_ID, NotServable, RecordingLibrary
from hotline_cti.wallboard.sessions import SessionStore
from hotline_cti.wallboard.supervision import Listening
from hotline_cti.wallboard.throttle import LoginThrottle

COOKIE = "wallboard_session"
HASH_THREADS = 2  # PBKDF2 releases the GIL: two threads use both cores without starving the loop
MAX_HASHING = 8  # logins waiting for a hash beyond this are refused with 429 at once
HUB_KEY: web.AppKey[Hub] = web.AppKey("hub", Hub)
USERS_KEY: web.AppKey[UsersSource] = web.AppKey("users", UsersSource)
SIGNER_KEY: web.AppKey[SessionSigner] = web.AppKey("signer", SessionSigner)
SECURE_KEY: web.AppKey[bool] = web.AppKey("secure_cookie", bool)
SESSIONS_KEY: web.AppKey[SessionStore] = web.AppKey("sessions", SessionStore)
THROTTLE_KEY: web.AppKey[LoginThrottle] = web.AppKey("throttle", LoginThrottle)
GATE_KEY: web.AppKey[_HashGate] = web.AppKey("hash_gate")
AUDIT_KEY: web.AppKey[_Audit] = web.AppKey("audit")


class AgentResult(Protocol):
    """What an agent command answers (``hotline_cti.adapters.ami.agents.AgentOutcome``)."""

    @property
    def result(self) -> str: ...

    @property
    def reason(self) -> str: ...

    def to_dict(self) -> dict[str, object]: ...


# Agent commands (issue 18): AgentControl.run(action, agent, reason) on serve's AMI client.
AgentRunner = Callable[[str, str, str], Awaitable[AgentResult]]
AGENTS_KEY: web.AppKey[AgentRunner] = web.AppKey("agents")

RECORDINGS_KEY: web.AppKey[RecordingLibrary | None] = web.AppKey("recordings")
LISTENING_KEY: web.AppKey[Listening | None] = web.AppKey("listening")
SPY_STATUS = {"ok": 200, "refused": 409, "failed": 502, "unknown": 504}
NO_LINK = "this wall has no Asterisk link (it reads every node from the store): {what} on the wall beside a node"
SESSION_KEY: web.RequestKey[Session] = web.RequestKey("session", Session)
PUBLIC = ("/login", "/logout", "/static/")
SSE_KEEPALIVE = 15.0  # seconds between comment lines, so proxies keep an idle stream open
SESSION_RECHECK = 1.0  # an open stream re-checks its session this often: a revoked one stops within a second
_DUMMY_HASH = "pbkdf2_sha256$200000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _HashGate:
    """The thread pool password hashes run in, and how many logins wait for it (bounded)."""

    def __init__(self, threads: int = HASH_THREADS, limit: int = MAX_HASHING) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wallboard-hash")
        self.limit = limit
        self.waiting = 0

    async def check(self, password: str, encoded: str) -> bool | None:
        """``check_password`` off the event loop; None when too many are already waiting."""
        if self.waiting >= self.limit:
            return None
        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, check_password, password, encoded)
        finally:
            self.waiting -= 1


class _Audit:
    """Audit rows of this wall's logins and actions, to the sink given (or nowhere)."""

    def __init__(self, sink: ActionSink | None, region: Callable[[], str]) -> None:
        self.sink = sink
        self._region = region

    def __call__(self, user: str, action: str, result: str, detail: str = "", reason: str = "") -> None:
        record = ActionRecord(dt.datetime.now(dt.UTC), f"wallboard:{user[:64]}", action, result, detail, reason)
        audit_action(self.sink, self._region(), record)


def _session(request: web.Request) -> Session | None:
    value = request.cookies.get(COOKIE)
    now = time.time()
    session = request.app[SIGNER_KEY].verify(value, now) if value else None
    if session is None or not request.app[SESSIONS_KEY].check(session, request.app[USERS_KEY].current(), now):
        return None
    return session


def current(request: web.Request) -> Session:
    """The logged-in session (the middleware guarantees one on protected routes)."""
    return request[SESSION_KEY]


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/events"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Anonymous users get the login page (pages) or 401 (API, SSE)."""
    if request.path.startswith(PUBLIC):
        return await handler(request)
    session = _session(request)
    if session is None:
        if _is_api(request.path):
            raise web.HTTPUnauthorized(text="log in first", content_type="text/plain")
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
    request[SESSION_KEY] = session
    response = await handler(request)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _safe_next(value: str | None) -> str:
    """Only same-site paths (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _html(text: str, status: int = 200, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=headers)


async def login_form(request: web.Request) -> web.Response:
    """GET /login."""
    return _html(assets.login_page(_safe_next(request.query.get("next"))))


def _address(request: web.Request) -> str:
    # The peer address, not X-Forwarded-For: a header anyone can set would let a guesser dodge the limit.
    return request.remote or "?"


async def login(request: web.Request) -> web.Response:
    """POST /login: check the password (unless locked out), open a session, go back to where the user was headed."""
    form = await request.post()
    name, password = str(form.get("user", "")), str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "/")))
    throttle, address, audit = request.app[THROTTLE_KEY], _address(request), request.app[AUDIT_KEY]
    left = throttle.locked_for(name, address)
    if left > 0:  # refused before hashing: a locked-out flood costs no CPU
        throttle.refused_while_locked(name, address, left)  # logged, not audited: a flood must not fill the table
        return _html(assets.login_page(next_url, failed=True), status=429, retry_after=left)
    user = request.app[USERS_KEY].current().get(name)
    # Hash even for an unknown user, so timing does not tell which names exist.
    checked = await request.app[GATE_KEY].check(password, user.password_hash if user else _DUMMY_HASH)
    if checked is None:
        return _html(assets.login_page(next_url, failed=True), status=429, retry_after=1)
    if not checked or user is None:
        if throttle.failed(name, address):
            audit(name, "login", "refused", f"from {address}", "locked out after repeated failures")
        return _html(assets.login_page(next_url, failed=True), status=401)
    throttle.succeeded(name)
    audit(name, "login", "ok", f"from {address}")
    now = time.time()
    signer = request.app[SIGNER_KEY]
    sid = request.app[SESSIONS_KEY].open(user, now + signer.lifetime)
    response = web.Response(status=302, headers={"Location": next_url})
    response.set_cookie(
        COOKIE,
        signer.issue(user, now, sid),
        max_age=request.app[SIGNER_KEY].lifetime,
        httponly=True,
        samesite="Strict",
        secure=request.app[SECURE_KEY],
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.Response:
    """POST /logout: end the session on the server (a copy of the cookie is worthless after) and drop the cookie."""
    session = _session(request)
    if session is not None:
        request.app[SESSIONS_KEY].revoke(session.sid)
        request.app[AUDIT_KEY](session.user, "logout", "ok")
    response = web.Response(status=302, headers={"Location": "/login"})
    response.del_cookie(COOKIE, path="/")
    return response


async def wall(request: web.Request) -> web.Response:
    """GET /: the live wall."""
    session = current(request)
    return _html(assets.wall_page(session.user, session.role, asterisk=request.app[HUB_KEY].linked))


async def merger(request: web.Request) -> web.Response:
    """GET /merger: the merger view."""
    session = current(request)
    return _html(assets.merger_page(session.user, session.role))


async def state(request: web.Request) -> web.Response:
    """GET /api/state: the current snapshot."""
    return web.Response(text=request.app[HUB_KEY].snapshot_json(), content_type="application/json", charset="utf-8")


async def events(request: web.Request) -> web.StreamResponse:
    """GET /events: server-sent events, one ``data:`` line per snapshot (at most the hub's rate)."""
    hub = request.app[HUB_KEY]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    queue = hub.subscribe()
    try:
        await response.write(b"retry: 2000\n\n")
        idle = 0.0
        while True:
            text: str | None
            try:
                text = await asyncio.wait_for(queue.get(), SESSION_RECHECK)
            except TimeoutError:
                text = None
            if _session(request) is None:
                break  # logged out, removed or given a new role since the stream opened: it ends with the session
            if text is None:
                idle += SESSION_RECHECK
                if idle >= SSE_KEEPALIVE:
                    idle = 0.0
                    await response.write(b": keep-alive\n\n")
                continue
            idle = 0.0
            await response.write(f"data: {text}\n\n".encode())
    except ConnectionResetError:
        pass  # the screen went away
    finally:
        hub.unsubscribe(queue)
    return response


def _require_supervisor(request: web.Request, action: str) -> None:
    session = current(request)
    why = ""
    if not session.is_supervisor:
        why = "supervisors only: viewers cannot change the wall"
    elif request.headers.get("X-Requested-With") != "wallboard":
        why = "missing X-Requested-With: wallboard"
    if why:
        request.app[AUDIT_KEY](session.user, action, "refused", reason=why)
        raise web.HTTPForbidden(text=why, content_type="text/plain")


def _refuse_unlinked(request: web.Request, action: str, detail: str, what: str) -> None:
    """On a wall with no Asterisk link: refuse (409, JSON naming the reason) and audit it; else nothing."""
    if request.app[HUB_KEY].linked:
        return
    why = NO_LINK.format(what=what)
    request.app[AUDIT_KEY](current(request).user, action, "refused", detail, why)
    body = json.dumps({"ok": False, "result": "refused", "reason": why})
    raise web.HTTPConflict(text=body, content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="body is not JSON", content_type="text/plain") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body is not a JSON object", content_type="text/plain")
    return body


async def acknowledge(request: web.Request) -> web.Response:
    """POST /api/ack: acknowledge one alert (supervisors)."""
    _require_supervisor(request, "ack")
    body = await _json_body(request)
    alert = body.get("id")
    audit = request.app[AUDIT_KEY]
    if not isinstance(alert, str) or not alert:
        audit(current(request).user, "ack", "refused", reason="'id' must name an alert")
        raise web.HTTPBadRequest(text="'id' must name an alert", content_type="text/plain")
    hub = request.app[HUB_KEY]
    hub.state.acknowledge(alert)
    hub.touch()
    audit(current(request).user, "ack", "ok", alert[:200])
    return web.json_response({"ok": True, "id": alert})


async def thresholds(request: web.Request) -> web.Response:
    """POST /api/thresholds: change the answer-rate target and the wait alert (supervisors)."""
    _require_supervisor(request, "thresholds")
    body = await _json_body(request)
    hub = request.app[HUB_KEY]
    asked = json.dumps({k: body.get(k) for k in ("answer_target", "wait_alert")}, ensure_ascii=False)[:300]
    audit, who = request.app[AUDIT_KEY], current(request).user
    try:
        hub.state.thresholds.update(body.get("answer_target"), body.get("wait_alert"))
    except ValueError as exc:
        audit(who, "thresholds", "refused", asked, str(exc))
        raise web.HTTPBadRequest(text=str(exc), content_type="text/plain") from None
    hub.touch()
    t = hub.state.thresholds
    audit(who, "thresholds", "ok", asked)
    return web.json_response({"ok": True, "answer_target": t.answer_target, "wait_alert": t.wait_alert})


async def agent(request: web.Request) -> web.Response:
    """POST /api/agent: log an agent in or out, pause it with a reason of the YAML, or unpause it (supervisors)."""
    _require_supervisor(request, "agent")
    body = await _json_body(request)
    audit, who = request.app[AUDIT_KEY], current(request).user
    name, action, reason = body.get("agent"), body.get("action"), body.get("reason", "")
    asked = json.dumps({"agent": name, "action": action, "reason": reason}, ensure_ascii=False)[:300]
    _refuse_unlinked(request, "agent", asked, "agents are logged in, out and paused")
    why = ""
    if not is_agent_id(name):
        why = "'agent' must be an agent id of letters and digits"
    elif action not in AGENT_ACTIONS:
        why = f"'action' must be one of {', '.join(AGENT_ACTIONS)}"
    elif not isinstance(reason, str) or len(reason) > 40:
        why = "'reason' must be a pause reason id"
    if why:
        audit(who, "agent", "refused", asked, why)
        raise web.HTTPBadRequest(text=why, content_type="text/plain")
    runner = request.app.get(AGENTS_KEY)
    if runner is None:
        audit(who, f"agent:{action}", "refused", asked, "no AMI: serve runs without --ami")
        raise web.HTTPServiceUnavailable(text="agent commands need serve --ami", content_type="text/plain")
    outcome = await runner(str(action), str(name), reason if action == "pause" else "")
    audit(who, f"agent:{action}", outcome.result, asked, outcome.reason[:400])
    status = 200 if outcome.result == "ok" else (409 if outcome.result == "refused" else 502)
    return web.json_response({"ok": outcome.result == "ok", **outcome.to_dict()}, status=status)


class _OnlyThisFile(web.FileResponse):
    """A FileResponse that never swaps in a pre-compressed ``<name>.gz`` / ``.br`` sibling: only the checked file
    is served, whatever the request's Accept-Encoding."""

    def _get_file_path_stat_encoding(self, accept_encoding: str) -> tuple[Path | None, os.stat_result, str | None]:
        return super()._get_file_path_stat_encoding("")


async def recording(request: web.Request) -> web.StreamResponse:
    """GET /api/recordings/{call_id}: a supervisor plays a call's recording (audited).

    No X-Requested-With here: an ``<audio>`` element cannot send it, and a GET changes nothing (the session
    cookie is SameSite=Strict, so another site cannot make the browser send it). A player asks again for
    later ranges: only the request for the start of the file (no Range, or one from byte 0) is audited.
    """
    session = current(request)
    audit, call_id = request.app[AUDIT_KEY], request.match_info["call_id"]
    detail = f"call {call_id[:64]}"
    if not session.is_supervisor:
        why = "supervisors only: viewers cannot play recordings"
        audit(session.user, "recording:play", "refused", detail, why)
        raise web.HTTPForbidden(text=why, content_type="text/plain")
    _refuse_unlinked(request, "recording:play", detail, "recordings are played (they are on the nodes' disks)")
    library = request.app[RECORDINGS_KEY]
    if library is None:
        raise web.HTTPNotFound(text="recordings are not served here (no database)", content_type="text/plain")
    if not CALL_ID.match(call_id):
        audit(session.user, "recording:play", "refused", detail[:80], "not a call id")
        raise web.HTTPBadRequest(text="not a call id", content_type="text/plain")
    try:
        path = await library.file_of(call_id)
    except NotServable as exc:
        audit(session.user, "recording:play", "refused", detail, str(exc))
        raise web.HTTPNotFound(text=f"no recording to play: {exc}", content_type="text/plain") from None
    first = request.http_range.start in (None, 0)
    if first:
        audit(session.user, "recording:play", "ok", f"{detail}: {path.name}")
    return _OnlyThisFile(
        path,
        headers={
            "Content-Type": recording_type(path),
            "Content-Disposition": f'inline; filename="{path.name}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


async def spy(request: web.Request) -> web.Response:
    """POST /api/spy {"target": agent channel or call id, "mode": listen|whisper|barge} (supervisors, audited).

    Asterisk calls the supervisor's own phone (``supervision.phones`` in the merger file); the answer comes
    once the spy leg started (or was refused / failed). Its end is audited when it comes.
    """
    _require_supervisor(request, "spy")
    body = await _json_body(request)
    audit, who = request.app[AUDIT_KEY], current(request).user
    target, mode = body.get("target"), body.get("mode", str(SpyMode.LISTEN))
    asked = f"{str(mode)[:10]} {str(target)[:120]}"
    _refuse_unlinked(request, "spy", asked, "supervisors listen in")
    listening = request.app[LISTENING_KEY]
    why = ""
    if listening is None:
        why = "listening in is not available here (no AMI connection)"
    elif not isinstance(target, str) or not target:
        why = "'target' must name an agent's channel or a call id"
    elif mode not in {str(m) for m in SpyMode}:
        why = "'mode' must be listen, whisper or barge"
    elif who not in listening.phones():
        why = f"no phone for {who} in the merger file's supervision.phones"
    if why or listening is None or not isinstance(target, str):
        audit(who, "spy", "refused", asked, why)
        raise web.HTTPBadRequest(text=why, content_type="text/plain")
    record = await listening.runner.execute(
        SpyRequest(target, SpyMode(str(mode)), listening.phones()[who], f"wallboard:{who}")
    )
    listening.runner.watch(record)
    audit(who, "spy", record.result, f"{asked} (spy {record.spy_id})", record.reason)
    data = record.to_dict()
    data["channel"], data["reason"] = mask_numbers(record.channel), mask_numbers(record.reason)
    return web.json_response(data, status=SPY_STATUS.get(record.result, 502))


async def css(request: web.Request) -> web.Response:
    """GET /static/wallboard.css."""
    return web.Response(text=assets.CSS, content_type="text/css", charset="utf-8")


async def js(request: web.Request) -> web.Response:
    """GET /static/wallboard.js."""
    return web.Response(text=assets.script(), content_type="application/javascript", charset="utf-8")


def build_app(
    hub: Hub,
    users: Mapping[str, User] | UsersSource,
    signer: SessionSigner,
    *,
    secure_cookie: bool = False,
    throttle: LoginThrottle | None = None,
    audit: ActionSink | None = None,
    sessions: SessionStore | None = None,
    agents: AgentRunner | None = None,
    recordings: RecordingLibrary | None = None,
    listening: Listening | None = None,
) -> web.Application:
    """The aiohttp application; the caller runs it (and starts ``hub``).

    ``users``: a fixed mapping, or a :class:`UsersSource` that follows its file. ``throttle``: login limits
    (default :class:`LoginLimits` defaults). ``audit``: where login and supervisor-action rows go.
    ``recordings``: the records table and recordings dir supervisors play recordings from (none: 404).
    ``listening``: the spy executor and supervisors' phones for listen / whisper / barge (none: refused).
    """
    app = web.Application(middlewares=[auth_middleware])
    app[HUB_KEY] = hub
    app[USERS_KEY] = users if isinstance(users, UsersSource) else UsersSource(users=users)
    app[SIGNER_KEY] = signer
    app[SECURE_KEY] = secure_cookie
    app[SESSIONS_KEY] = sessions if sessions is not None else SessionStore()
    app[THROTTLE_KEY] = throttle if throttle is not None else LoginThrottle()
    app[AUDIT_KEY] = _Audit(audit, lambda: hub.state.table.region)
    if agents is not None:
        app[AGENTS_KEY] = agents
    app[RECORDINGS_KEY] = recordings
    app[LISTENING_KEY] = listening
    gate = app[GATE_KEY] = _HashGate()

    async def stop_pool(_app: web.Application) -> None:
        gate.pool.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(stop_pool)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", wall)
    app.router.add_get("/merger", merger)
    app.router.add_get("/events", events)
    app.router.add_get("/api/state", state)
    app.router.add_post("/api/ack", acknowledge)
    app.router.add_post("/api/thresholds", thresholds)
    app.router.add_post("/api/agent", agent)
    app.router.add_get("/api/recordings/{call_id}", recording)
    app.router.add_post("/api/spy", spy)
    app.router.add_get("/static/wallboard.css", css)
    app.router.add_get("/static/wallboard.js", js)
    return app
