"""The health of serve's services as the supervisor writes it (``--status-file``) and its readers see it.

One JSON object, replaced atomically about once a second: whether every service is running and
beating, and per service its pid, time since its last heartbeat, restarts, stalls and last exit.
``written`` lets a reader tell a stopped supervisor (a stale file) from a healthy one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 1024  # the file is a few hundred bytes; anything larger is not ours
STALE_AFTER = 5.0  # seconds without a rewrite: the supervisor itself is gone or stuck


class StatusError(ValueError):
    """The status file is missing, unreadable or not a status file."""


@dataclass(frozen=True)
class Health:
    healthy: bool  # every service running and beating, and the file fresh
    stale: bool  # not rewritten for STALE_AFTER seconds
    age: float  # seconds since the supervisor wrote it
    services: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "stale": self.stale, "age": round(self.age, 1), "services": self.services}


def write_status(path: Path, healthy: bool, services: dict[str, dict[str, Any]]) -> None:
    """Replace ``path`` atomically with the current health."""
    tmp = path.with_name(path.name + ".tmp")
    body = {"healthy": healthy, "written": time.time(), "services": services}
    tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_status(path: Path, now: float | None = None) -> Health:
    """The health in ``path``; :class:`StatusError` naming the path when it cannot be read as one."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise StatusError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise StatusError(f"{path}: over {MAX_BYTES} bytes, not a serve status file")
    try:
        body = json.loads(raw)
        healthy, written, services = bool(body["healthy"]), float(body["written"]), dict(body["services"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StatusError(f"{path}: not a serve status file ({type(exc).__name__})") from None
    age = max(0.0, (time.time() if now is None else now) - written)
    stale = age > STALE_AFTER
    return Health(healthy and not stale, stale, age, services)
