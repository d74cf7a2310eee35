"""Agent state in the events service (issue 18): commands (MQTT, wallboard), the state log and autopause.

Built before the first AMI login, so that login's QueueStatus resync compares with the log's last rows.
"""

from __future__ import annotations

import logging

from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.ami.agents import AgentControl, AgentOutcome, AgentStateFeed, StateSink
from hotline_cti.adapters.ami.client import AmiClient
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import RoutingTable
from hotline_cti.storage.store import Store

log = logging.getLogger(__name__)


class ModelSource:
    """The merger config in service (agents, pause reasons); re-read when the holder took a new table."""

    def __init__(self, holder: ConfigHolder) -> None:
        self.holder = holder
        self._table: RoutingTable | None = None
        self._model: MergerConfig | None = None

    def __call__(self) -> MergerConfig:
        table = self.holder.table
        if table is not self._table or self._model is None:
            try:
                self._model = load_config(self.holder.path).model
            except ConfigError:
                if self._model is None:
                    raise
                log.error("agents not reloaded: %s is invalid now; keeping the previous ones", self.holder.path)
            self._table = table
        return self._model


class AgentService:
    """:class:`AgentControl` and :class:`AgentStateFeed` on the events service's AMI client."""

    def __init__(self, client: AmiClient, holder: ConfigHolder, sink: StateSink) -> None:
        self.model = ModelSource(holder)
        self.control = AgentControl(client, self.model)
        self.feed = AgentStateFeed(
            client,
            sink,
            holder.table.region,
            self.control,
            autopause_after=lambda: self.model().agent_settings.autopause_after,
        )

    async def load(self, store: Store) -> None:
        """Start from the state log's last rows (an unreadable log: start empty, the resync logs everyone)."""
        try:
            self.feed.load(await store.last_agent_states())
        except Exception as exc:
            log.warning("agent state log not read (%s): every logged-in agent is logged again at the resync", exc)

    async def run(self, action: str, agent: str, reason: str = "") -> AgentOutcome:
        """One agent command (MQTT, wallboard)."""
        return await self.control.run(action, agent, reason)

    async def close(self) -> None:
        await self.feed.close()
