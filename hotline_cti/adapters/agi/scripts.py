"""The AGI scripts, written sans-IO: command lines out, replies in.

A script only decides: it sets the decision's channel variables and the
sentinel ``HOTLINE_DECIDED`` last, and plays nothing. Asterisk plays the prompts,
runs the 12345 menu and the survey in the generated dialplan, so no prompt length
can meet a controller deadline and a stalled controller never holds a caller
mid-prompt. ``route`` decides from the dialled number; ``ivr`` from the menu key
and topic the dialplan read. Neither reads a reply, so both are
:class:`FixedScript` objects, their lines built once per decision. The FastAGI
server and a classic AGI driver run the same scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.protocol import AgiReply, quote_arg
from hotline_cti.callers.screen import CallerScreen
from hotline_cti.core.diversion import QueueState, divert_live
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Call, Decision, Instant
from hotline_cti.core.routing import NO_KEY_DIGIT, decide
from hotline_cti.core.table import RoutingTable


@dataclass(frozen=True, slots=True)
class FixedScript:
    """A script whose commands do not depend on the replies (``route``): sent in order, one per reply.

    :class:`~hotline_cti.adapters.agi.session.ScriptSession` walks ``wire`` by index, with no generator
    to resume.
    """

    lines: tuple[str, ...]
    wire: tuple[bytes, ...]  # the same lines as sent: UTF-8, each with its newline

    @classmethod
    def of(cls, lines: tuple[str, ...]) -> FixedScript:
        """The script sending ``lines``."""
        return cls(lines, tuple(line.encode() + b"\n" for line in lines))


Dialogue = Generator[str, AgiReply, None]  # a script that reads the replies (menus, survey)
Script = Dialogue | FixedScript


# What Asterisk's application-argument parser does not pass through unchanged inside an MSet
# argument: ',' separates pairs, '"' and '\\' are removed, brackets and parentheses nest
# (a ',' inside them does not separate), res_agi's 1.4 compat mode turns '|' into ',', and a
# channel with AGIEXECFULL=yes would expand '${...}' in EXEC's argument.
MSET_UNSAFE = frozenset(',"\\()[]|$\r\n')
MSET_MAX_PAIRS = 24  # Asterisk 11 parsed 24 pairs per MSet (20 parses 99); a longer list is split
MSET_MAX_LINE = 1000  # bytes; res_agi reads a command line into a 2 KiB buffer


def set_var(name: str, value: str) -> str:
    """A SET VARIABLE command line."""
    return f"SET VARIABLE {name} {quote_arg(value)}"


def set_vars(pairs: list[tuple[str, str]]) -> list[str]:
    """Command lines that set ``pairs`` in their order, as few round trips as Asterisk allows.

    Each run of values MSet passes through unchanged becomes one ``EXEC MSet "A=1,B=2"``
    (one round trip instead of one per variable: a routing session's CPU is mostly its round
    trips). A value MSet would split or rewrite goes on its own SET VARIABLE, which takes any text.
    """
    lines: list[str] = []
    run: list[tuple[str, str]] = []
    size = 0
    for name, value in pairs:
        if not MSET_UNSAFE.isdisjoint(value):
            lines.extend(_mset(run))
            run, size = [], 0
            lines.append(set_var(name, value))
            continue
        pair_size = len(name.encode()) + len(value.encode()) + 2  # '=' and ','
        if len(run) == MSET_MAX_PAIRS or size + pair_size > MSET_MAX_LINE:
            lines.extend(_mset(run))
            run, size = [], 0
        run.append((name, value))
        size += pair_size
    lines.extend(_mset(run))
    return lines


def _mset(run: list[tuple[str, str]]) -> list[str]:
    """One command for a run of MSet-safe pairs: none, a SET VARIABLE, or an EXEC MSet."""
    if len(run) < 2:
        return [set_var(*pair) for pair in run]
    return ['EXEC MSet "' + ",".join(f"{name}={value}" for name, value in run) + '"']


def call_from_env(env: dict[str, str]) -> Call:
    """Call facts from the AGI environment: AGI(agi://host/route,${EXTEN},${HOTLINE_CITY})."""
    dialled = env.get("agi_arg_1") or env.get("agi_extension", "")
    city = env.get("agi_arg_2") or None
    caller = env.get("agi_callerid")
    return Call(dialled, caller=None if caller in (None, "", "unknown") else caller, city=city)


def decision_variables(d: Decision) -> list[tuple[str, str]]:
    """The channel variables the dialplan needs to finish the call from ``d`` alone."""
    pairs = [
        (cv.ACTION, d.action.value),
        (cv.TARGET, d.target or ""),
        (cv.DIAL, d.dial or ""),
        (cv.PROMPTS, "&".join(cv.sound(p) for p in d.prompts)),
        (cv.ORIGIN, d.origin or ""),
        (cv.EXPERT, d.expert or ""),
        (cv.EXPERT_QUEUE, d.expert_queue or ""),
        (cv.ESCALATION, d.escalation or ""),
        (cv.OVERFLOW, d.overflow or ""),
        (cv.OVERFLOW_AFTER, str(d.overflow_after)),
        (cv.PRIORITY, str(d.priority)),
        (cv.FORM, d.form),
        (cv.MODE, d.mode.value),
        (cv.PHASE, d.phase.value),
        (cv.CENTRE, d.centre or ""),
        (cv.CITY, d.city or ""),
        (cv.HANGUP, "1" if d.hangup else ""),
        (cv.MENU, "1" if d.menu else ""),
    ]
    if d.diverted:  # only a decision after the menu is diverted: nothing earlier on the channel to clear
        pairs.append((cv.DIVERTED, d.diverted))
        if d.offer_callback:
            pairs.append((cv.CALLBACK_OFFER, "1"))
    return pairs


def decision_commands(d: Decision, before: tuple[tuple[str, str], ...] = ()) -> tuple[str, ...]:
    """The command lines that carry out ``d``: set ``before`` and its variables, the sentinel last.

    The sentinel rides in the variables' own MSet (one round trip) unless a value needs a
    SET VARIABLE of its own, in which case it still comes last.
    """
    return tuple(set_vars([*before, *decision_variables(d), (cv.DECIDED, cv.DECIDED_VALUE)]))


SCRIPTS_LIMIT = 4096  # scripts kept per cache; bounded: unknown numbers make a new decision every time


class ScriptCache:
    """The scripts of one routing table's decisions, each built once; held beside the table's DecisionCache.

    Decisions repeat (the table's :class:`~hotline_cti.core.memo.DecisionCache` hands back the same object),
    so a script is kept per decision object, and per (decision, caller tag) for a screened one. Keyed by
    identity, since hashing a 20-field dataclass costs more than the lookup saves; an entry holds its
    decision, so the id cannot be reused while it is kept. Dropped with its table.
    """

    __slots__ = ("_plain", "_tagged", "limit")

    def __init__(self, limit: int | None = None) -> None:
        self._plain: dict[int, tuple[Decision, FixedScript]] = {}
        # Larger than the plain: each decision comes with no tag, the repeat tag, a rule's tag or both.
        self._tagged: dict[tuple[int, str], tuple[Decision, FixedScript]] = {}
        # SCRIPTS_LIMIT read when made (tests/conftest.py's --no-caches sets it to 0); 0 keeps nothing
        self.limit = SCRIPTS_LIMIT if limit is None else limit

    def plain(self, d: Decision) -> FixedScript:
        """:func:`decision_commands` of ``d`` as a script."""
        cached = self._plain.get(id(d))
        if cached is None or cached[0] is not d:
            cached = (d, FixedScript.of(decision_commands(d)))
            if len(self._plain) >= self.limit:
                self._plain.clear()
            if self.limit:
                self._plain[id(d)] = cached
        return cached[1]

    def tagged(self, d: Decision, tag: str) -> FixedScript:
        """:func:`decision_commands` of ``d`` with ``HOTLINE_CALLER_TAG`` set to ``tag`` first."""
        key = (id(d), tag)
        cached = self._tagged.get(key)
        if cached is None or cached[0] is not d:
            cached = (d, FixedScript.of(decision_commands(d, ((cv.CALLER_TAG, tag),))))
            if len(self._tagged) >= 4 * self.limit:
                self._tagged.clear()
            if self.limit:
                self._tagged[key] = cached
        return cached[1]


def _divert(
    decision: Decision, table: RoutingTable, cache: DecisionCache | None, queues: Mapping[str, QueueState]
) -> Decision:
    """``decision`` after the table's diversion rules on the live ``queues`` (memoised in ``cache`` when given)."""
    return divert_live(decision, table.diversions, cache.diverted if cache is not None else {}, queues)


UNCACHED = ScriptCache(0)  # builds every script afresh and keeps none (a caller without a cache of its own)
NO_QUEUES: Mapping[str, QueueState] = {}


def route_script(
    env: dict[str, str],
    table: RoutingTable,
    now: Instant,
    decider: Callable[..., Decision],
    screen: CallerScreen | None = None,
    queues: Mapping[str, QueueState] = NO_QUEUES,
    cache: DecisionCache | None = None,
    scripts: ScriptCache = UNCACHED,
) -> FixedScript:
    """``agi://host/route``: decide, set the variables, play the prompts, set the sentinel last.

    ``queues`` is the live state of the queues (the events service's snapshot); a queue's diversion rules
    use it. With a caller ``screen`` the decision is then adjusted for a repeat or nuisance caller and the
    agent's tag set (docs/callers.md). The replies change nothing: every command is sent whatever came back.
    ``cache`` and ``scripts`` are the table's memos, owned by the caller (by default none: decided and built afresh).
    """
    call = call_from_env(env)
    decision = decider(call, table, now, cache)
    if table.diversions:
        decision = _divert(decision, table, cache, queues)
    if screen is None:
        return scripts.plain(decision)
    adjusted, tag = screen.screen(call, decision, table, now, first=True)
    if adjusted is decision and not tag:
        return scripts.plain(decision)
    return scripts.tagged(adjusted, tag)


def ivr_script(
    env: dict[str, str],
    table: RoutingTable,
    now: Instant,
    decider: Callable[..., Decision],
    screen: CallerScreen | None = None,
    queues: Mapping[str, QueueState] = NO_QUEUES,
    cache: DecisionCache | None = None,
) -> FixedScript:
    """``agi://host/ivr``: the decision after the 12345 menu the dialplan ran.

    Arguments: ``${HOTLINE_DIALLED},${HOTLINE_CITY},${HOTLINE_IVR_CHOICE},${HOTLINE_TOPIC}``. No key
    (the caller let the menu run out) is decided as 0, a human agent, and recorded as no choice.
    """
    base = call_from_env(env)
    choice = env.get("agi_arg_3", "")
    topic = env.get("agi_arg_4", "")
    call = Call(
        base.dialled,
        caller=base.caller,
        city=base.city,
        ivr_choice=choice or NO_KEY_DIGIT,
        topic=topic if topic.isdigit() else None,
    )
    decision = decider(call, table, now, cache)
    if table.diversions:
        decision = _divert(decision, table, cache, queues)
    if screen is not None:
        decision, _ = screen.screen(call, decision, table, now, first=False)
    return FixedScript.of(decision_commands(decision, ((cv.IVR_CHOICE, choice),)))


SCRIPTS = ("route", "ivr")


def select_script(
    name: str,
    env: dict[str, str],
    table: RoutingTable,
    now: Instant,
    screen: CallerScreen | None = None,
    queues: Mapping[str, QueueState] = NO_QUEUES,
    cache: DecisionCache | None = None,
    scripts: ScriptCache = UNCACHED,
) -> Script | None:
    """The script called ``name`` (``route`` or ``ivr``) for a session; None if unknown.

    ``cache`` and ``scripts``: the memos of ``table`` its holder keeps (none: every call decided afresh).
    """
    if name == "route":
        return route_script(env, table, now, decide, screen, queues, cache, scripts)
    if name == "ivr":
        return ivr_script(env, table, now, decide, screen, queues, cache)
    return None
