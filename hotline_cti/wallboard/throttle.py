"""Login rate limit and lockout, per user name and per client address.

Each failed login counts against the name tried and the address it came from. After ``user_failures``
failures of one name (or ``address_failures`` from one address) within ``window`` seconds, that name (or
address) is locked for ``lockout`` seconds: every login for it is refused, the right password included,
and no password is hashed, so a guessing flood costs the server almost nothing. A good login clears the
name's count (not the address's: one right password must not reset a guessing run from that address).

Limits come from the environment (pydantic-checked), see docs/wallboard.md:
``HOTLINE_WALLBOARD_USER_FAILURES``, ``HOTLINE_WALLBOARD_ADDRESS_FAILURES``,
``HOTLINE_WALLBOARD_FAILURE_WINDOW`` and ``HOTLINE_WALLBOARD_LOCKOUT`` (seconds).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

ENV_USER_FAILURES = "HOTLINE_WALLBOARD_USER_FAILURES"
ENV_ADDRESS_FAILURES = "HOTLINE_WALLBOARD_ADDRESS_FAILURES"
ENV_WINDOW = "HOTLINE_WALLBOARD_FAILURE_WINDOW"
ENV_LOCKOUT = "HOTLINE_WALLBOARD_LOCKOUT"
MAX_KEYS = 50_000  # names and addresses tracked; random names must not grow memory without bound


class LoginLimits(BaseModel):
    """How many failures lock a name or an address, within what window, for how long."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_failures: int = Field(default=5, ge=1, le=1000)
    address_failures: int = Field(default=20, ge=1, le=100_000)
    window: float = Field(default=900.0, gt=0, le=86_400)
    lockout: float = Field(default=900.0, gt=0, le=86_400)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LoginLimits:
        """Limits from the environment (unset = default); raises ValueError naming the bad variable."""
        env = os.environ if environ is None else environ
        names = {
            "user_failures": ENV_USER_FAILURES,
            "address_failures": ENV_ADDRESS_FAILURES,
            "window": ENV_WINDOW,
            "lockout": ENV_LOCKOUT,
        }
        given = {key: env[var] for key, var in names.items() if env.get(var)}
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            bad = ", ".join(f"{names[str(e['loc'][0])]}: {e['msg']}" for e in exc.errors() if e["loc"])
            raise ValueError(bad or str(exc)) from None


@dataclass
class _Track:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


def _printable(name: str) -> str:
    """A user name fit for a log line: bounded, control characters escaped (no forged log lines)."""
    return repr(name[:64])


class LoginThrottle:
    """Failure counts and lockouts; ``clock`` is monotonic seconds (tests pass their own)."""

    def __init__(self, limits: LoginLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or LoginLimits()
        self._clock = clock
        self._users: OrderedDict[str, _Track] = OrderedDict()
        self._addresses: OrderedDict[str, _Track] = OrderedDict()

    def locked_for(self, user: str, address: str) -> float:
        """Seconds until ``user`` and ``address`` may try again (0: not locked)."""
        now = self._clock()
        left = 0.0
        for table, key in ((self._users, user), (self._addresses, address)):
            track = table.get(key)
            if track is not None and track.locked_until > now:
                left = max(left, track.locked_until - now)
        return left

    def failed(self, user: str, address: str) -> bool:
        """Count a failed login; True when it locked the name or the address. Logs either way."""
        now = self._clock()
        locked_user = self._count(self._users, user, self.limits.user_failures, now)
        locked_address = self._count(self._addresses, address, self.limits.address_failures, now)
        if locked_user or locked_address:
            what = " and ".join(
                w
                for w, hit in ((f"user {_printable(user)}", locked_user), (f"address {address}", locked_address))
                if hit
            )
            log.warning("wallboard login: %s locked for %.0fs after repeated failures", what, self.limits.lockout)
        else:
            log.warning("wallboard login failed: user %s from %s", _printable(user), address)
        return locked_user or locked_address

    def refused_while_locked(self, user: str, address: str, left: float) -> None:
        """Log a login refused because of a lockout (the password was not even checked)."""
        log.warning(
            "wallboard login refused while locked (%.0fs left): user %s from %s", left, _printable(user), address
        )

    def succeeded(self, user: str) -> None:
        """A good login: the name starts afresh."""
        self._users.pop(user, None)

    def _count(self, table: OrderedDict[str, _Track], key: str, limit: int, now: float) -> bool:
        track = table.get(key)
        if track is None:
            if len(table) >= MAX_KEYS:
                self._evict(table, now)
            track = table[key] = _Track()
        table.move_to_end(key)
        track.failures.append(now)
        while track.failures and track.failures[0] <= now - self.limits.window:
            track.failures.popleft()
        if len(track.failures) >= limit and track.locked_until <= now:
            track.locked_until = now + self.limits.lockout
            track.failures.clear()  # after the lockout the count starts again
            return True
        return False

    def _evict(self, table: OrderedDict[str, _Track], now: float) -> None:
        """Drop the least recently failed entries that are not locked (locked ones must stay locked)."""
        for key in list(table):
            if len(table) < MAX_KEYS * 0.9:
                return
            if table[key].locked_until <= now:
                del table[key]
        while len(table) >= MAX_KEYS:  # all locked: the oldest lose their lock rather than memory grow
            table.popitem(last=False)
