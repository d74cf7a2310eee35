"""Server-side wallboard sessions: a cookie is only good while its session is in this store.

The signed cookie names a random session id; the store says whether that id is still live. So a
session ends on logout (its id is dropped), and as soon as its user is removed from the users file,
changes role or gets a new password (each session keeps a stamp of the user's line; a different line
revokes every session of that user). The store is in memory: a restart of the process logs everyone
out, as a random signing key always did.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from hotline_cti.wallboard.auth import Session, User

MAX_SESSIONS = 10_000  # a login flood of good passwords cannot grow memory without bound: oldest go first


def user_stamp(user: User) -> str:
    """A short digest of the user's line: it changes with the role or the password."""
    return hashlib.sha256(f"{user.name}\0{user.role}\0{user.password_hash}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class _Live:
    user: str
    stamp: str
    expires: float


class SessionStore:
    """Live session ids; ``open`` at login, ``check`` on every request, ``revoke`` at logout."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max_sessions
        self._live: OrderedDict[str, _Live] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live)

    def open(self, user: User, expires: float) -> str:
        """A new session id for ``user`` until ``expires`` (epoch seconds)."""
        while len(self._live) >= self.max_sessions:
            self._live.popitem(last=False)
        sid = secrets.token_urlsafe(24)
        self._live[sid] = _Live(user.name, user_stamp(user), expires)
        return sid

    def check(self, session: Session, users: Mapping[str, User], now: float) -> bool:
        """True while the cookie's session is live and its user's line is unchanged; else it is revoked."""
        live = self._live.get(session.sid)
        if live is None or live.user != session.user:
            return False
        user = users.get(live.user)
        if user is None or user_stamp(user) != live.stamp:
            self.revoke_user(live.user)  # removed, new role or new password: every session of the user ends
            return False
        if live.expires <= now or user.role != session.role:
            self.revoke(session.sid)
            return False
        return True

    def revoke(self, sid: str) -> None:
        """End one session (logout)."""
        self._live.pop(sid, None)

    def revoke_user(self, name: str) -> int:
        """End every session of ``name``; how many there were."""
        gone = [sid for sid, live in self._live.items() if live.user == name]
        for sid in gone:
            del self._live[sid]
        return len(gone)
