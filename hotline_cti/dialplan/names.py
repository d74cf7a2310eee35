"""Context, queue and feature names shared by the generated files and their checks."""

from __future__ import annotations

from hotline_cti import channel_vars as cv
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core import naming

# Re-exported: the generators name queues through this module; the rule itself lives in the core.
from hotline_cti.core.naming import expert_queue_name as expert_queue_name
from hotline_cti.core.naming import queue_name as queue_name

CTX_INBOUND = "hotline-inbound"  # every dialled form of 12345 and the legacy lines
CTX_ROUTE = "hotline-route"  # asks the controller, then dispatches
CTX_DISPATCH = "hotline-dispatch"
CTX_QUEUE = "hotline-queue"
CTX_DIAL = "hotline-dial"
CTX_EMERGENCY = "hotline-emergency"
CTX_FALLBACK = "hotline-fallback"  # controller down: the default centre's general queue
CTX_END = "hotline-end"
CTX_AGENT_SETUP = "hotline-agent-setup"  # Queue b() pre-dial Gosub on agent legs
CTX_AGENTS = "hotline-agents"  # Local/<agent>@hotline-agents/n queue members
CTX_XFER_OUT = "hotline-onekey"  # one-key transfer targets (one extension per target)
# The same targets for attended transfers asked by the CLI or MQTT: their consultation call is named
# Local/<code>@hotline-onekey-cmd-..., so the records tell them from an agent's own *2 (audited there).
CTX_XFER_CMD = "hotline-onekey-cmd"
CTX_XFER = "hotline-xfer"  # one-key blind / three-way feature subroutines
CTX_CONF = "hotline-threeway"  # three-way calls (ConfBridge)
CTX_HANDOVER = "hotline-handover"  # 110 hands a call to 12345: marked, then the general queue
CTX_SURVEY = "hotline-survey"
FEATURE_GROUP = "hotline_xfer"
SOUND = cv.SOUND_DIR


def default_centre(cfg: MergerConfig) -> str:
    """The region-level centre of ``cfg`` (:func:`hotline_cti.core.naming.default_centre`)."""
    return naming.default_centre(cfg.centres)


def all_queue_names(cfg: MergerConfig) -> list[str]:
    """Every queue queues.conf defines, sorted."""
    names = [queue_name(c.id, q.id) for c in cfg.centres for q in cfg.queues]
    names += [expert_queue_name(c.id, g.id) for c in cfg.centres for g in cfg.expert_groups]
    return sorted(names)
