"""Wallboard users, password hashes and signed session cookies.

Users live in a file named by ``HOTLINE_WALLBOARD_USERS``, one ``user:role:hash`` a line (``#`` comments),
where role is ``supervisor`` or ``viewer`` and hash is ``pbkdf2_sha256$<iterations>$<salt>$<digest>``
(``hotline-cti wallboard hash-password`` prints such a line); :class:`UsersSource` re-reads it when it
changes. Sessions are HMAC-SHA256-signed cookies naming a server-side session
(:mod:`hotline_cti.wallboard.sessions`); the key comes from ``HOTLINE_WALLBOARD_SECRET`` (random per process
when unset).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hotline_cti.config.errors import ConfigError
from hotline_cti.config.limits import read_text_bounded

log = logging.getLogger(__name__)

ENV_USERS = "HOTLINE_WALLBOARD_USERS"
ENV_SECRET = "HOTLINE_WALLBOARD_SECRET"
ROLES = ("supervisor", "viewer")
SUPERVISOR = "supervisor"
ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 200_000
SESSION_SECONDS = 12 * 3600  # one shift
USERS_FILE_BYTES = 1024 * 1024  # a line per user: thousands of users fit


class UsersFileError(ValueError):
    """A users file that cannot be used; the message names file:line."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<digest>`` (URL-safe base64, no ':' so it fits a users line)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; a malformed hash never matches."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM or not parts[1].isdigit():
        return False
    try:
        salt, want = _unb64(parts[2]), _unb64(parts[3])
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, int(parts[1]))
    return hmac.compare_digest(got, want)


@dataclass(frozen=True, slots=True)
class User:
    """A wallboard login."""

    name: str
    role: str
    password_hash: str

    @property
    def is_supervisor(self) -> bool:
        """Supervisors may acknowledge alerts and change thresholds; viewers only watch."""
        return self.role == SUPERVISOR


def parse_users(text: str, source: str = "<users>") -> dict[str, User]:
    """Parse ``user:role:hash`` lines; raises :class:`UsersFileError` listing every bad line as source:line."""
    users: dict[str, User] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        where = f"{source}:{number}"
        if len(parts) != 3 or not all(parts):
            problems.append(f"{where}: want user:role:hash, got {len(parts)} field(s)")
            continue
        name, role, encoded = parts
        if role not in ROLES:
            problems.append(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        elif not encoded.startswith(ALGORITHM + "$") or len(encoded.split("$")) != 4:
            problems.append(f"{where}: hash of {name!r} is not {ALGORITHM}$iterations$salt$digest")
        elif name in users:
            problems.append(f"{where}: user {name!r} appears twice")
        else:
            users[name] = User(name, role, encoded)
    if problems:
        raise UsersFileError("\n".join(problems))
    return users


def load_users(path: str | Path | None = None) -> dict[str, User]:
    """Read the users file (``path`` or ``$HOTLINE_WALLBOARD_USERS``); no file configured means no users."""
    where = path if path is not None else os.environ.get(ENV_USERS)
    if not where:
        return {}
    file = Path(where)
    try:
        # Bounded, regular files only: a users file named /dev/zero or a FIFO must not hang the wall.
        text = read_text_bounded(file, USERS_FILE_BYTES)
    except ConfigError as exc:
        raise UsersFileError(f"cannot read users file: {exc}") from None
    return parse_users(text, str(file))


class UsersSource:
    """The users of a file, re-read when the file changes (checked on every call: a stat costs microseconds).

    A user removed from the file, or given another role or password, loses their sessions at their next
    request. A file that became invalid is refused with an error in the log and the users read before keep
    serving (as a bad merger file is handled). Built from a mapping instead of a path, it never changes.
    """

    def __init__(self, path: str | Path | None = None, users: Mapping[str, User] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._users: dict[str, User] = dict(users) if users is not None else {}
        self._seen: tuple[int, int, int] | None = None
        if self.path is not None and users is None:
            self._users = load_users(self.path)
            self._seen = self._signature()

    @classmethod
    def from_env(cls) -> UsersSource:
        """The file named by ``$HOTLINE_WALLBOARD_USERS`` (no users when unset)."""
        where = os.environ.get(ENV_USERS)
        return cls(where) if where else cls(users={})

    def _signature(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> Mapping[str, User]:
        """The users as the file says now."""
        if self.path is None:
            return self._users
        seen = self._signature()
        if seen != self._seen:
            self._seen = seen
            try:
                fresh = load_users(self.path)
            except UsersFileError as exc:
                log.error("wallboard users file not reloaded, keeping the previous users: %s", exc)
            else:
                gone = sorted(set(self._users) - set(fresh))
                log.info("wallboard users file reloaded: %d user(s)%s", len(fresh), f", removed {gone}" if gone else "")
                self._users = fresh
        return self._users


def session_secret() -> bytes:
    """The cookie signing key: ``$HOTLINE_WALLBOARD_SECRET`` or 32 random bytes."""
    value = os.environ.get(ENV_SECRET)
    return value.encode("utf-8") if value else secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class Session:
    """Who is logged in, as the cookie says."""

    user: str
    role: str
    expires: int  # epoch seconds
    sid: str = ""  # the server-side session (hotline_cti.wallboard.sessions); '' never matches one

    @property
    def is_supervisor(self) -> bool:
        """See :attr:`User.is_supervisor`."""
        return self.role == SUPERVISOR


class SessionSigner:
    """Makes and checks ``<payload>.<signature>`` cookie values."""

    def __init__(self, secret: bytes, lifetime: int = SESSION_SECONDS) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("utf-8"), hashlib.sha256).digest())

    def issue(self, user: User, now: float, sid: str = "") -> str:
        """A cookie value for ``user`` naming session ``sid``, valid for :attr:`lifetime` seconds from ``now``."""
        body = {"u": user.name, "r": user.role, "e": int(now) + self.lifetime, "s": sid}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def verify(self, value: str, now: float) -> Session | None:
        """The session of a cookie value, or None when forged, malformed or expired."""
        payload, sep, signature = value.partition(".")
        if not sep or not hmac.compare_digest(self._sign(payload).encode(), signature.encode("utf-8", "replace")):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(str(body["u"]), str(body["r"]), int(body["e"]), str(body.get("s", "")))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= now or session.role not in ROLES:
            return None
        return session
