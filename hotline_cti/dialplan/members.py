"""Which queues each agent of the YAML joins at log-in, at which penalty, and how queues widen (issue 18).

One place for the rule that the generated dialplan (feature codes), ``queuerules.conf`` and the AMI
log-in (CLI, MQTT, wallboard) all follow:

* a skill at level L puts the agent in its queue at penalty L (0 rings first; levels 0..9);
* a ``city`` skill is the general queue of that city's centre; ``line`` is the line's own queue,
  ``queue`` and ``expert`` the queue / expert-seat queue at the agent's home centre;
* a queue in ``agent_settings.widen`` also gets every general agent of its centre (an agent in that
  centre's general queue at level L) at penalty 10 + L, and a rule that raises the caller's
  ``QUEUE_MAX_PENALTY`` from 9 to 19 after the wait: skilled agents first, general agents after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline_cti.config.agent_checks import skill_kind
from hotline_cti.config.schema import SKILL_LEVELS, MergerConfig
from hotline_cti.dialplan import names

SKILLED_MAX_PENALTY = SKILL_LEVELS - 1  # QUEUE_MAX_PENALTY a caller starts with: skilled agents only
WIDEN_BASE = SKILL_LEVELS  # general agents in a widened queue: WIDEN_BASE + their general level
WIDENED_MAX_PENALTY = WIDEN_BASE + SKILL_LEVELS - 1  # after the wait: every general agent too


@dataclass(frozen=True, slots=True)
class Membership:
    """One queue an agent joins at log-in."""

    queue: str  # Asterisk queue name, e.g. gx-l12315
    penalty: int
    widened: bool = False  # there as a general agent of a widened queue


@dataclass(frozen=True, slots=True)
class AgentPlan:
    """An agent of the YAML: the member interface and every queue it joins."""

    agent: str
    name: str
    memberships: tuple[Membership, ...]  # sorted by queue name

    @property
    def interface(self) -> str:
        return member_interface(self.agent)

    @property
    def state_interface(self) -> str:
        return state_interface(self.agent)


def member_interface(agent: str) -> str:
    """The queue member interface of an agent: ``Local/<agent>@hotline-agents/n`` (docs/dialplan.md)."""
    return f"Local/{agent}@{names.CTX_AGENTS}/n"


def state_interface(agent: str) -> str:
    """The device whose state the queue watches (busy, ringing): the agent's PJSIP endpoint."""
    return f"PJSIP/{agent}"


def agent_from_interface(interface: str) -> str | None:
    """``agent1001`` from ``Local/agent1001@hotline-agents/n``; None for any other interface."""
    prefix, suffix = "Local/", f"@{names.CTX_AGENTS}/n"
    if interface.startswith(prefix) and interface.endswith(suffix):
        agent = interface[len(prefix) : -len(suffix)]
        return agent or None
    return None


def rule_name(after: int) -> str:
    """The queuerules.conf rule of queues that widen after ``after`` seconds."""
    return f"hotline-widen-{after}"


def widened_queues(cfg: MergerConfig) -> dict[str, tuple[str, int]]:
    """Asterisk queue name -> (its centre, seconds after which it widens to that centre's general agents)."""
    out: dict[str, tuple[str, int]] = {}
    for w in cfg.agent_settings.widen:
        for centre in cfg.centres:
            if w.queue is not None:
                out[names.queue_name(centre.id, w.queue)] = (centre.id, w.after)
            elif w.expert is not None:
                out[names.expert_queue_name(centre.id, w.expert)] = (centre.id, w.after)
    return out


def _skill_queue(cfg: MergerConfig, home: str, kind: str, value: str) -> str | None:
    if kind == "queue":
        return names.queue_name(home, value)
    if kind == "expert":
        return names.expert_queue_name(home, value)
    if kind == "city":
        centre = next((c.id for c in cfg.centres if c.city == value), None)
        return None if centre is None else names.queue_name(centre, "general")
    line = next((h for h in cfg.hotlines if h.number == value), None)
    return None if line is None or line.queue is None else names.queue_name(home, line.queue)


def agent_plans(cfg: MergerConfig) -> dict[str, AgentPlan]:
    """Agent id -> its plan, for every agent of ``cfg`` (a checked config: unknown names are skipped)."""
    default = names.default_centre(cfg)
    own: dict[str, dict[str, int]] = {}
    for agent in cfg.agents:
        home = agent.centre or default
        queues = own.setdefault(agent.id, {})
        for skill in agent.skills:
            queue = _skill_queue(cfg, home, *skill_kind(skill))
            if queue is not None:
                queues[queue] = min(skill.level, queues.get(queue, skill.level))
    widened = widened_queues(cfg)
    plans: dict[str, AgentPlan] = {}
    for agent in cfg.agents:
        queues = own[agent.id]
        members = [Membership(q, p) for q, p in queues.items()]
        for queue, (centre, _after) in widened.items():
            level = queues.get(names.queue_name(centre, "general"))
            if level is not None and queue not in queues:
                members.append(Membership(queue, WIDEN_BASE + level, widened=True))
        plans[agent.id] = AgentPlan(agent.id, agent.name, tuple(sorted(members, key=lambda m: m.queue)))
    return plans


def skill_changes(old: MergerConfig, new: MergerConfig) -> list[str]:
    """What a supervisor must know before a new file is put in service: agents added or removed, each queue
    an agent joins or leaves or whose penalty changes, and queues whose widening changes (one line each)."""
    a, b = agent_plans(old), agent_plans(new)
    out: list[str] = []
    for agent in sorted(a.keys() - b.keys()):
        out.append(f"agent removed: {agent} {a[agent].name}")
    for agent in sorted(b.keys() - a.keys()):
        joined = ", ".join(f"{m.queue} {m.penalty}" for m in b[agent].memberships)
        out.append(f"agent added:   {agent} {b[agent].name}: {joined}")
    for agent in sorted(a.keys() & b.keys()):
        before = {m.queue: m.penalty for m in a[agent].memberships}
        after = {m.queue: m.penalty for m in b[agent].memberships}
        if before == after:
            continue
        out.append(f"agent changed: {agent} {b[agent].name}")
        for queue in sorted(before.keys() | after.keys()):
            x, y = before.get(queue), after.get(queue)
            if x != y:
                out.append(f"    {queue}: penalty {'-' if x is None else x} -> {'-' if y is None else y}")
    wa, wb = widened_queues(old), widened_queues(new)
    for queue in sorted(wa.keys() | wb.keys()):
        wx, wy = wa.get(queue), wb.get(queue)
        if wx != wy:
            was = "never" if wx is None else f"after {wx[1]} s"
            now = "never" if wy is None else f"after {wy[1]} s"
            out.append(f"widening: {queue}: {was} -> {now}")
    return out
