"""The merger file's queue diversion rules (分流), compiled into the core's rules (core/diversion.py) per
Asterisk queue, once per config load."""

from __future__ import annotations

from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.diversion import DiversionRule, DivertTo
from hotline_cti.core.naming import queue_name


def compile_diversions(cfg: MergerConfig, overflow_target: str) -> dict[str, tuple[DiversionRule, ...]]:
    """Asterisk queue name ('<centre>-<queue>') -> its rules, for every centre of ``cfg``."""
    subcentres = {s.id: s for s in cfg.subcentres}
    out: dict[str, tuple[DiversionRule, ...]] = {}
    for centre in cfg.centres:
        for q in cfg.queues:
            rules: list[DiversionRule] = []
            overflow = q.overflow or (overflow_target if overflow_target != q.id else None)
            for r in q.diversion:
                queue_id = r.target if r.to is DivertTo.OVERFLOW and r.target else overflow
                sites: tuple[tuple[str | None, str, str], ...] = ()
                if r.to is DivertTo.SUBCENTRE and r.target in subcentres:
                    sub = subcentres[r.target]
                    if sub.dial:
                        sites = ((None, sub.id, sub.dial),)
                    else:
                        sites = tuple((s.city, f"{sub.id}@{s.city}", s.dial) for s in sub.sites)
                rules.append(
                    DiversionRule(
                        when=r.when,
                        over=r.over or 0,
                        to=r.to,
                        queue=queue_name(centre.id, queue_id) if queue_id else None,
                        sites=sites,
                        prompts=(r.prompt,) if r.prompt else (),
                        maxlen=q.maxlen or 0,
                    )
                )
            if rules:
                out[queue_name(centre.id, q.id)] = tuple(rules)
    return out
