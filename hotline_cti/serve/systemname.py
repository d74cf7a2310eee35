"""Serve's node name against Asterisk's own ``systemname`` (asterisk.conf), checked after every AMI login.

The node names every call this events service records (``<node>:<Uniqueid>``) and its writer lease. Asterisk
knows its own name only when ``systemname`` is set (it then also prefixes its uniqueids with it); when it
reports one that differs from the node, a copy-pasted ``--node`` or a standby naming another node is the
likely cause, so it is said loudly. Nothing changes: keys must stay stable while the service runs.
"""

from __future__ import annotations

import logging

from hotline_cti.adapters.ami.client import AmiClient, AmiError

log = logging.getLogger(__name__)


class SystemNameCheck:
    """An AMI resync hook: ``CoreSettings`` once per login; a warning when ``SystemName`` is not the node."""

    def __init__(self, node: str, timeout: float = 5.0) -> None:
        self.node = node
        self.timeout = timeout
        self.reported: str | None = None  # what Asterisk said at the last login ('' when it has no systemname)

    async def __call__(self, client: AmiClient) -> None:
        try:
            answer = await client.action("CoreSettings", timeout=self.timeout, check=False)
        except AmiError as exc:
            log.info("node %s: Asterisk's systemname not read (%s)", self.node, exc)
            return
        name = (answer.get("SystemName", "") or "").strip() if answer.success else ""
        self.reported = name
        if name and name != self.node:
            s = client.settings
            log.warning(
                "node %s: the Asterisk at %s:%d calls itself %r (systemname in asterisk.conf); its calls are "
                "recorded as %s:<uniqueid>. Name the node as Asterisk does (serve --node %s) unless this is meant",
                self.node,
                s.host,
                s.port,
                name,
                self.node,
                name,
            )
        elif name:
            log.info("node %s: Asterisk's systemname agrees", self.node)
