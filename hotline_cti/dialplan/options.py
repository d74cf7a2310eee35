"""Render-time settings that are not part of the merger config."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CONTROLLER = "127.0.0.1:4573"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Where the FastAGI controllers listen (tried in order: failover) and dial timeouts."""

    controllers: tuple[str, ...] = (DEFAULT_CONTROLLER,)
    dial_timeout: int = 30

    def __post_init__(self) -> None:
        if not self.controllers:
            raise ValueError("at least one controller host:port is needed")
        for item in self.controllers:
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"controller {item!r} is not host:port, e.g. 127.0.0.1:4573")
