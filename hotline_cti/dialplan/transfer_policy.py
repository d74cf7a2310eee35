"""The one-key transfer policy of a merger config: the targets the generated dialplan dials.

The plans themselves are pure (:mod:`hotline_cti.core.transfer`); this module gives them what only
the dialplan package knows: the target list (:func:`transfer_targets`) and the context, feature
and variable names the AMI steps use.
"""

from __future__ import annotations

from hotline_cti import channel_vars as cv
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Mode, TransferMode
from hotline_cti.core.transfer import ONEKEY_MODES, Destination, DialplanNames, TransferPolicy
from hotline_cti.dialplan import names
from hotline_cti.dialplan.features import ATXFER_CODE
from hotline_cti.dialplan.targets import transfer_targets

DIALPLAN_NAMES = DialplanNames(
    onekey=names.CTX_XFER_OUT,
    onekey_command=names.CTX_XFER_CMD,
    conference=names.CTX_CONF,
    handover=names.CTX_HANDOVER,
    atxfer_code=ATXFER_CODE,
    call_id_var=cv.CALL_ID,
    centre_var=cv.CENTRE,
)


def build_policy(cfg: MergerConfig) -> TransferPolicy:
    """The transfer policy of a merger config (targets from the dialplan generator's list)."""
    line_modes = {h.number: h.transfer_modes for h in cfg.hotlines if h.mode is Mode.TRANSFER}
    targets: dict[str, Destination] = {}
    for t in transfer_targets(cfg):
        key = t.key
        allowed = tuple(TransferMode(str(m)) for m in line_modes.get(key, [])) or ONEKEY_MODES
        dest = Destination(key, t.code, t.label, allowed)
        targets.setdefault(t.code, dest)
        targets.setdefault(key, dest)
    handover = frozenset(h.number for h in cfg.hotlines if h.mode is Mode.TRANSFER and h.handover_to_12345)
    return TransferPolicy(cfg.region.id, targets, handover, DIALPLAN_NAMES)
