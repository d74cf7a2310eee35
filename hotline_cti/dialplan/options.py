"""Render-time settings that are not part of the merger config."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_CONTROLLER = "127.0.0.1:4573"
SRV_SCHEME = "hagi://"  # res_agi looks up _agi._tcp.<domain> SRV records and tries each target in order
MAX_AGI_TIMEOUT = 60.0

# A host name, IPv4 or bracketed IPv6 address: nothing that could end or extend the AGI() argument.
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")


def _check_controller(item: str) -> None:
    if item.startswith(SRV_SCHEME):
        domain = item[len(SRV_SCHEME) :]
        # A port would make res_agi skip the SRV lookup (res_agi.c launch_ha_netscript): refuse it here.
        if not re.fullmatch(r"[A-Za-z0-9._-]+", domain) or domain.startswith((".", "-")):
            raise ValueError(
                f"controller {item!r} is not hagi://<domain> (no port, no path), e.g. hagi://agi.example.cn"
            )
        return
    host, sep, port = item.rpartition(":")
    if not sep or not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"controller {item!r} is not host:port (e.g. 127.0.0.1:4573) or hagi://<domain>")


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Where the FastAGI controllers listen (tried in order: failover) and dial timeouts.

    ``controllers``: ``host:port`` (asked as ``agi://host:port/<script>``) or ``hagi://<domain>``
    (asked verbatim: Asterisk resolves ``_agi._tcp.<domain>`` SRV and tries its targets in order).
    ``agi_timeout``: seconds one controller may hold a call before the next is asked (the channel's
    absolute timeout around each ``AGI()``); ``None`` leaves an accepting but silent controller
    to its own supervisor, as before.
    """

    controllers: tuple[str, ...] = (DEFAULT_CONTROLLER,)
    dial_timeout: int = 30
    agi_timeout: float | None = None

    def __post_init__(self) -> None:
        if not self.controllers:
            raise ValueError("at least one controller host:port is needed")
        for item in self.controllers:
            _check_controller(item)
        if self.agi_timeout is not None and not 0 < self.agi_timeout <= MAX_AGI_TIMEOUT:
            raise ValueError(f"agi timeout {self.agi_timeout:g} s is not within (0, {MAX_AGI_TIMEOUT:g}] seconds")
