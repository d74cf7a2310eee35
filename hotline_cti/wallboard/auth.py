"""Wallboard users, password hashes and signed session cookies.

Users live in a file named by ``HOTLINE_WALLBOARD_USERS``, one ``user:role:hash`` a line (``#`` comments),
where role is ``supervisor`` or ``viewer`` and hash is ``pbkdf2_sha256$<iterations>$<salt>$<digest>``
(``hotline-cti wallboard hash-password`` prints such a line). Sessions are HMAC-SHA256-signed cookies;
the key comes from ``HOTLINE_WALLBOARD_SECRET`` (random per process when unset, so a restart logs everyone out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hotline_cti.config.errors import ConfigError
from hotline_cti.config.limits import read_text_bounded

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

    def issue(self, user: User, now: float) -> str:
        """A cookie value for ``user``, valid for :attr:`lifetime` seconds from ``now``."""
        body = {"u": user.name, "r": user.role, "e": int(now) + self.lifetime}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def verify(self, value: str, now: float) -> Session | None:
        """The session of a cookie value, or None when forged, malformed or expired."""
        payload, sep, signature = value.partition(".")
        if not sep or not hmac.compare_digest(self._sign(payload).encode(), signature.encode("utf-8", "replace")):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(str(body["u"]), str(body["r"]), int(body["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= now or session.role not in ROLES:
            return None
        return session
