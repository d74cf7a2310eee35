"""Transfer targets an agent reaches with one key: emergency lines, sub-centres, expert seats."""

from __future__ import annotations

from dataclasses import dataclass

from hotline_cti import channel_vars as cv
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Mode
from hotline_cti.dialplan import names


@dataclass(frozen=True, slots=True)
class XferTarget:
    """``code`` is the extension in hotline-onekey (also dialled after the atxfer code)."""

    code: str
    label: str
    dial: str | None  # dial string, or None for an expert queue
    queue: str | None  # queue name (may hold ${HOTLINE_CENTRE})

    @property
    def key(self) -> str:
        """The target's id in audits and commands: '110', 'tax', 'tobacco@nanning', 'e12315'."""
        return self.label.rsplit(" ", 1)[-1]  # the labels end with it: 'sub-centre tobacco@nanning'


def transfer_targets(cfg: MergerConfig) -> list[XferTarget]:
    """Every one-key transfer target, in a stable order: emergency, sub-centres (80nn), experts (90nn)."""
    dial_of = {h.number: h.dial for h in cfg.hotlines if h.mode is Mode.TRANSFER and h.dial}
    numbers = set(cfg.emergency_numbers) | {h.number for h in cfg.hotlines if h.mode is Mode.TRANSFER}
    out = [
        XferTarget(n, f"emergency {n}", dial_of.get(n) or f"PJSIP/{n}@{cfg.region.trunk}", None)
        for n in sorted(numbers, key=lambda x: (len(x), x))
    ]
    index = 1
    for sub in sorted(cfg.subcentres, key=lambda s: s.id):
        if sub.dial:
            out.append(XferTarget(f"80{index:02d}", f"sub-centre {sub.id}", sub.dial, None))
            index += 1
        for site in sorted(sub.sites, key=lambda s: s.city):
            out.append(XferTarget(f"80{index:02d}", f"sub-centre {sub.id}@{site.city}", site.dial, None))
            index += 1
    for n, group in enumerate(sorted(cfg.expert_groups, key=lambda g: g.id), 1):
        queue = names.expert_queue_name("${" + cv.CENTRE + "}", group.id)
        out.append(XferTarget(f"90{n:02d}", f"expert seats {group.id}", None, queue))
    return out
