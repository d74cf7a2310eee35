"""The wallboard web application (aiohttp): pages, SSE stream, JSON state, login and supervisor actions.

Routes::

    GET  /login, POST /login, POST /logout     anyone
    GET  /, /merger                             logged in (anonymous -> 302 /login?next=...)
    GET  /events (SSE), /api/state (JSON)       logged in (anonymous -> 401)
    POST /api/ack {"id"}                        supervisor (viewer -> 403)
    POST /api/thresholds {"answer_target", "wait_alert"}   supervisor
    GET  /static/wallboard.css, /static/wallboard.js       anyone

Supervisor POSTs must carry ``X-Requested-With: wallboard`` (a header a cross-site form cannot set),
and the session cookie is HttpOnly + SameSite=Strict.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hotline_cti.wallboard import assets
from hotline_cti.wallboard.auth import Session, SessionSigner, User, check_password
from hotline_cti.wallboard.hub import Hub

COOKIE = "wallboard_session"
HUB_KEY: web.AppKey[Hub] = web.AppKey("hub", Hub)
USERS_KEY: web.AppKey[Mapping[str, User]] = web.AppKey("users", Mapping)
SIGNER_KEY: web.AppKey[SessionSigner] = web.AppKey("signer", SessionSigner)
SECURE_KEY: web.AppKey[bool] = web.AppKey("secure_cookie", bool)
SESSION_KEY: web.RequestKey[Session] = web.RequestKey("session", Session)
PUBLIC = ("/login", "/logout", "/static/")
SSE_KEEPALIVE = 15.0  # seconds between comment lines, so proxies keep an idle stream open
_DUMMY_HASH = "pbkdf2_sha256$200000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _session(request: web.Request) -> Session | None:
    value = request.cookies.get(COOKIE)
    return request.app[SIGNER_KEY].verify(value, time.time()) if value else None


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


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


async def login_form(request: web.Request) -> web.Response:
    """GET /login."""
    return _html(assets.login_page(_safe_next(request.query.get("next"))))


async def login(request: web.Request) -> web.Response:
    """POST /login: check the password, set the signed cookie, go back to where the user was headed."""
    form = await request.post()
    name, password = str(form.get("user", "")), str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "/")))
    user = request.app[USERS_KEY].get(name)
    # Hash even for an unknown user, so timing does not tell which names exist.
    ok = check_password(password, user.password_hash if user else _DUMMY_HASH) and user is not None
    if not ok or user is None:
        return _html(assets.login_page(next_url, failed=True), status=401)
    response = web.Response(status=302, headers={"Location": next_url})
    response.set_cookie(
        COOKIE,
        request.app[SIGNER_KEY].issue(user, time.time()),
        max_age=request.app[SIGNER_KEY].lifetime,
        httponly=True,
        samesite="Strict",
        secure=request.app[SECURE_KEY],
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.Response:
    """POST /logout: drop the cookie."""
    response = web.Response(status=302, headers={"Location": "/login"})
    response.del_cookie(COOKIE, path="/")
    return response


async def wall(request: web.Request) -> web.Response:
    """GET /: the live wall."""
    session = current(request)
    return _html(assets.wall_page(session.user, session.role))


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
        while True:
            try:
                text = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(f"data: {text}\n\n".encode())
    except ConnectionResetError:
        pass  # the screen went away
    finally:
        hub.unsubscribe(queue)
    return response


def _require_supervisor(request: web.Request) -> None:
    if not current(request).is_supervisor:
        raise web.HTTPForbidden(text="supervisors only: viewers cannot change the wall", content_type="text/plain")
    if request.headers.get("X-Requested-With") != "wallboard":
        raise web.HTTPForbidden(text="missing X-Requested-With: wallboard", content_type="text/plain")


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
    _require_supervisor(request)
    body = await _json_body(request)
    alert = body.get("id")
    if not isinstance(alert, str) or not alert:
        raise web.HTTPBadRequest(text="'id' must name an alert", content_type="text/plain")
    hub = request.app[HUB_KEY]
    hub.state.acknowledge(alert)
    hub.touch()
    return web.json_response({"ok": True, "id": alert})


async def thresholds(request: web.Request) -> web.Response:
    """POST /api/thresholds: change the answer-rate target and the wait alert (supervisors)."""
    _require_supervisor(request)
    body = await _json_body(request)
    hub = request.app[HUB_KEY]
    try:
        hub.state.thresholds.update(body.get("answer_target"), body.get("wait_alert"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc), content_type="text/plain") from None
    hub.touch()
    t = hub.state.thresholds
    return web.json_response({"ok": True, "answer_target": t.answer_target, "wait_alert": t.wait_alert})


async def css(request: web.Request) -> web.Response:
    """GET /static/wallboard.css."""
    return web.Response(text=assets.CSS, content_type="text/css", charset="utf-8")


async def js(request: web.Request) -> web.Response:
    """GET /static/wallboard.js."""
    return web.Response(text=assets.script(), content_type="application/javascript", charset="utf-8")


def build_app(
    hub: Hub, users: Mapping[str, User], signer: SessionSigner, *, secure_cookie: bool = False
) -> web.Application:
    """The aiohttp application; the caller runs it (and starts ``hub``)."""
    app = web.Application(middlewares=[auth_middleware])
    app[HUB_KEY] = hub
    app[USERS_KEY] = users
    app[SIGNER_KEY] = signer
    app[SECURE_KEY] = secure_cookie
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", wall)
    app.router.add_get("/merger", merger)
    app.router.add_get("/events", events)
    app.router.add_get("/api/state", state)
    app.router.add_post("/api/ack", acknowledge)
    app.router.add_post("/api/thresholds", thresholds)
    app.router.add_get("/static/wallboard.css", css)
    app.router.add_get("/static/wallboard.js", js)
    return app
