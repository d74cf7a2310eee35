"""extensions.conf: inbound numbers, the controller-driven routing and the dispatch on its variables.

The dialplan branches on the sentinel ``HOTLINE_DECIDED`` and never on
AGISTATUS alone: a refused connection gives FAILURE, a silent server gives
SUCCESS, and a prompt missing on disk (result=-1) turns a finished session
into FAILURE. Without the sentinel the call goes to the default centre's
general queue (the trunk's or dialled area's city's, when known), so no call
is lost when the controller is down.

The controller only decides; Asterisk plays. Prompts, the 12345 menu (``Read()``
over welcome, emergency hint and menu, so a key pressed during any of them
counts) and the survey run here, never inside an AGI session.
"""

from __future__ import annotations

from hotline_cti import channel_vars as cv
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Action
from hotline_cti.core.numbers import NumberError, dialled_forms, is_short_code, parse_dialled
from hotline_cti.core.routing import EXPERT_DIGIT, MENU_QUEUES
from hotline_cti.core.table import MAIN_NUMBER
from hotline_cti.dialplan import names, recording
from hotline_cti.dialplan.members import SKILLED_MAX_PENALTY
from hotline_cti.dialplan.options import SRV_SCHEME, RenderOptions
from hotline_cti.dialplan.spy import spy_context
from hotline_cti.dialplan.targets import transfer_targets


def v(name: str) -> str:
    """``${NAME}``."""
    return "${" + name + "}"


def is_set(name: str) -> str:
    return f'$["{v(name)}" != ""]'


def equals(name: str, value: str) -> str:
    return f'$["{v(name)}" = "{value}"]'


class _Ext:
    """Lines of one extension: the first as ``exten =>``, the rest as ``same => n``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []

    def add(self, app: str, label: str | None = None) -> _Ext:
        prio = ("1" if not self.lines else "n") + (f"({label})" if label else "")
        head = f"exten => {self.name}," if not self.lines else " same => "
        self.lines.append(f"{head}{prio},{app}")
        return self


def _context(name: str, comment: str, exts: list[_Ext], includes: tuple[str, ...] = ()) -> str:
    out = [f"; {comment}", f"[{name}]"]
    out += [f"include => {inc}" for inc in includes]
    for ext in exts:
        out += ext.lines
    return "\n".join(out) + "\n"


def inbound_numbers(cfg: MergerConfig) -> dict[str, str]:
    """Every dialled form of 12345 and the legacy lines (and aliases) -> the line's number."""
    areas = sorted({c.area_code for c in cfg.cities})
    city_area = {c.id: c.area_code for c in cfg.cities}
    only_area = cfg.cities[0].area_code if len(cfg.cities) == 1 else None
    out: dict[str, str] = {}
    numbers: list[tuple[str, str, str | None]] = [(MAIN_NUMBER, MAIN_NUMBER, None)]
    for line in cfg.hotlines:
        for number in (line.number, *line.aliases):
            numbers.append((number, line.number, city_area.get(line.city or "", only_area)))
    for number, canonical, own_area in numbers:
        if is_short_code(number):
            out[number] = canonical
            for area in areas:  # 0773-12345 reaches Guilin: short codes work behind every area code
                for form in dialled_forms(number, area):
                    out[form] = canonical
        elif own_area is not None:  # a landline only exists in its own area
            for form in dialled_forms(number, own_area):
                out[form] = canonical
    return out


def _agi_url(controller: str, script: str) -> str:
    if controller.startswith(SRV_SCHEME):  # res_agi resolves _agi._tcp.<domain> itself: pass it verbatim
        return f"{controller}/{script}"
    return f"agi://{controller}/{script}"


def _ask(ext: _Ext, opts: RenderOptions, script: str, args: str, on_decided: str) -> None:
    """Try each controller in turn; jump to ``on_decided`` as soon as the sentinel is set.

    With ``agi_timeout`` each attempt runs under the channel's absolute timeout: a controller that
    accepted but stays silent is cut there, Asterisk continues at the context's ``T`` extension
    (``_stall_exit``), which resumes at this attempt's sentinel check (labelled ``<script><n>``).
    """
    for n, controller in enumerate(opts.controllers, 1):
        ext.add(f"Set({cv.DECIDED}=)")
        if opts.agi_timeout is not None:
            ext.add(f"Set({cv.AGI_RESUME}={v('CONTEXT')},{v('EXTEN')},{script}{n})")
            ext.add(f"Set(TIMEOUT(absolute)={opts.agi_timeout:g})")
        ext.add(f"AGI({_agi_url(controller, script)}{',' + args if args else ''})")
        if opts.agi_timeout is not None:
            ext.add("Set(TIMEOUT(absolute)=0)", f"{script}{n}").add(f"Set({cv.AGI_RESUME}=)")
        ext.add(f"GotoIf({equals(cv.DECIDED, cv.DECIDED_VALUE)}?{on_decided})")


def _stall_exit(opts: RenderOptions) -> list[_Ext]:
    """The ``T`` extension of a context that asks controllers under ``agi_timeout`` (none without it).

    Asterisk jumps here when the absolute timeout cut an AGI() (pbx.c clears the timeout first). An
    absolute timeout of the site's own, outside an attempt, ends the call as it would without us.
    """
    if opts.agi_timeout is None:
        return []
    t = _Ext("T").add(f"NoOp(controller silent for {opts.agi_timeout:g} s: the next one, else the fallback)")
    t.add(f'GotoIf($["{v(cv.AGI_RESUME)}" = ""]?over)').add(f"Goto({v(cv.AGI_RESUME)})")
    return [t.add("Hangup()", "over")]


def _agent_visible(ext: _Ext) -> None:
    """Inherit the tags to the agent's channels (``__``) and prefix the caller-id name."""
    for name in (cv.ORIGIN, cv.EXPERT, cv.EXPERT_QUEUE, cv.CENTRE, cv.CALL_ID, cv.CALLER_TAG):
        ext.add(f"Set(__{name}={v(name)})")
    ext.add(f"GotoIf({equals(cv.TAGGED, '1')}?tagged)")  # a sub-centre's overflow queue: tagged already
    ext.add(f"ExecIf({is_set(cv.EXPERT)}?Set(CALLERID(name)=[E-{v(cv.EXPERT)}]{v('CALLERID(name)')}))")
    ext.add(f"ExecIf({is_set(cv.ORIGIN)}?Set(CALLERID(name)=[{v(cv.ORIGIN)}]{v('CALLERID(name)')}))")
    # A repeat or nuisance caller's tag first, where a phone's narrow display still shows it.
    ext.add(f"ExecIf({is_set(cv.CALLER_TAG)}?Set(CALLERID(name)=[{v(cv.CALLER_TAG)}]{v('CALLERID(name)')}))")
    ext.add(f"Set({cv.TAGGED}=1)").add("NoOp(tagged)", "tagged")


# Body of the HotlineRoute UserEvent: field name -> the channel variable it reports (docs/dialplan.md).
ROUTE_EVENT_FIELDS = (
    ("CallId", cv.CALL_ID),
    ("Dialled", cv.DIALLED),
    ("Form", cv.FORM),
    ("Action", cv.ACTION),
    ("Target", cv.TARGET),
    ("Origin", cv.ORIGIN),
    ("Mode", cv.MODE),
    ("Phase", cv.PHASE),
    ("Centre", cv.CENTRE),
    ("City", cv.CITY),
    ("Expert", cv.EXPERT),
    ("CallerTag", cv.CALLER_TAG),
)


def user_event(name: str, fields: list[tuple[str, str]]) -> str:
    """``UserEvent(name,Key: value,...)``: Asterisk sends it to AMI as ``Event: UserEvent``."""
    return f"UserEvent({name}," + ",".join(f"{key}: {value}" for key, value in fields) + ")"


def route_event(**fixed: str) -> str:
    """The HotlineRoute event of the call's variables; ``fixed`` replaces fields (Action/Target for fallback)."""
    return user_event(cv.EVENT_ROUTE, [(key, fixed.get(key, v(name))) for key, name in ROUTE_EVENT_FIELDS])


def transfer_event(key: str, mode: str, status: str = "CHANNELREDIRECT_STATUS") -> str:
    """The HotlineTransfer event an agent's one-key transfer sends once the caller is moved (audit).

    ``Result`` is ``status``'s value, ``Step`` names it: ChannelRedirect (SUCCESS, or NOCHANNEL when the
    caller hung up first) or, for a three-way call, Originate (SUCCESS once the target answered).
    """
    step = "Originate" if status == "ORIGINATE_STATUS" else "ChannelRedirect"
    return user_event(
        cv.EVENT_TRANSFER,
        [
            ("CallId", v(cv.CALL_ID)),
            ("Target", key),
            ("Mode", mode),
            ("Channel", v("CHANNEL")),
            ("Result", v(status)),
            ("Step", step),
        ],
    )


# Before every Queue(): skilled agents only at first. app_queue's penalty rules (queuerules.conf) move
# QUEUE_MAX_PENALTY only when the dialplan set it, and a widened queue's rule raises it after the wait.
SKILLED_ONLY = f"Set(QUEUE_MAX_PENALTY={SKILLED_MAX_PENALTY})"

# Queue() option: Gosub on each agent's new channel before it rings. The transfer keys are enabled there
# only: Asterisk 20 ignores applicationmap's ActivatedBy, so a caller holding DYNAMIC_FEATURES could fire them.
AGENT_SETUP = f"b({names.CTX_AGENT_SETUP}^s^1)"

AGENT_PATTERN = "_[0-9A-Za-z]!"
AGENT_AFTER = "agent"  # hotline-threeway,agent: where an agent's leg goes on after its caller left
# Queue() option F: the member's channel goes on there (instead of being hung up) when the caller leaves
# the bridge, so an agent's *3 key can move its caller into the conference and follow it.
MEMBER_AFTER = f"F({names.CTX_CONF}^{AGENT_AFTER}^1)"
MENU_SOUNDS = ("emergency-hint", "menu-main")  # after the decision's own prompts (the welcome)
MENU_TRIES = 3
MENU_WAIT = 5  # seconds for a key after the menu prompt
TOPIC_DIGITS, TOPIC_WAIT = 6, 8
RATING_KEYS = ("1", "2", "3")  # 满意 / 基本满意 / 不满意
RATING_WAIT = 6


def fallback_centres(cfg: MergerConfig) -> dict[str, str]:
    """City id -> the 12345 centre an undecided call from that city falls back to (its own, else the region's)."""
    centres = {c.city: c.id for c in cfg.centres if c.city is not None}
    default = names.default_centre(cfg)
    return {city.id: centres.get(city.id, default) for city in cfg.cities}


def fallback_queues(cfg: MergerConfig) -> dict[str, str]:
    """City id -> the general queue its undecided calls join."""
    return {city: names.queue_name(centre, "general") for city, centre in fallback_centres(cfg).items()}


def _dialled_city(cfg: MergerConfig, number: str) -> str | None:
    """The city a dialled form's area code names, when exactly one city has that code."""
    try:
        area = parse_dialled(number).area_code
    except NumberError:
        return None
    cities = [c.id for c in cfg.cities if c.area_code == area]
    return cities[0] if len(cities) == 1 else None


def _menu(ext: _Ext) -> None:
    """The 12345 menu on ``ext``: up to MENU_TRIES reads of one key, then the topic after the expert key.

    The first read plays the decision's prompts (the welcome), the emergency hint and the menu
    as one list, so a key pressed during any of them is the choice; later tries replay the menu
    only, after the invalid-choice prompt. No valid key after every try leaves the choice empty
    (the controller routes that to a human agent).
    """
    first = "&".join([v(cv.PROMPTS), *(cv.sound(p) for p in MENU_SOUNDS)])
    for attempt in range(MENU_TRIES):
        if attempt:
            ext.add(f"Playback({cv.sound('invalid-choice')})")
        prompt = first if attempt == 0 else cv.sound(MENU_SOUNDS[-1])
        ext.add(f"Read({cv.IVR_CHOICE},{prompt},1,,1,{MENU_WAIT})", "menu" if attempt == 0 else None)
        for digit in sorted(MENU_QUEUES):
            ext.add(f"GotoIf({equals(cv.IVR_CHOICE, digit)}?chosen)")
        ext.add(f"GotoIf({equals(cv.IVR_CHOICE, EXPERT_DIGIT)}?topic)")
    ext.add(f"Set({cv.IVR_CHOICE}=)").add("Goto(chosen)")
    ext.add(f"Read({cv.TOPIC},{cv.sound('menu-topic')},{TOPIC_DIGITS},,1,{TOPIC_WAIT})", "topic")
    ext.add(f"NoOp(12345 menu: key {v(cv.IVR_CHOICE)} topic {v(cv.TOPIC)})", "chosen")


def render_extensions(cfg: MergerConfig, opts: RenderOptions) -> str:
    """The whole extensions.conf text for ``cfg`` (deterministic)."""
    centre = names.default_centre(cfg)
    parts = [
        f"; extensions.conf for region {cfg.region.id} ({cfg.region.name}), generated by"
        " `hotline-cti dialplan render`. Do not edit: change the merger YAML and render again.\n"
        f"; FastAGI controllers (failover order): {', '.join(opts.controllers)}\n"
    ]
    if opts.agi_timeout is not None:
        parts[0] += f"; each controller may hold a call {opts.agi_timeout:g} s (TIMEOUT(absolute), then T)\n"

    # Emergency lines carry their own target in: with the controller down they still reach their seats.
    emergency = {t.code: t.dial for t in transfer_targets(cfg) if t.dial and t.label.startswith("emergency")}
    fallbacks = fallback_centres(cfg)
    inbound: list[_Ext] = []
    for number, line in sorted(inbound_numbers(cfg).items()):
        ext = _Ext(number)
        dialled_city = _dialled_city(cfg, number)
        if dialled_city is not None:  # the trunk's city, set before, wins (as in the routing core)
            ext.add(f'ExecIf($["{v(cv.FALLBACK_CENTRE)}" = ""]?Set({cv.FALLBACK_CENTRE}={fallbacks[dialled_city]}))')
        if line in emergency:
            ext.add(f"Set({cv.ACTION}={Action.EMERGENCY.value})").add(f"Set({cv.TARGET}={line})")
            ext.add(f"Set({cv.DIAL}={emergency[line]})")
        inbound.append(ext.add(f"Goto({names.CTX_ROUTE},{v('EXTEN')},1)"))
    parts.append(_context(names.CTX_INBOUND, "every dialled form of 12345 and the merged lines", inbound))
    for city in sorted(cfg.cities, key=lambda c: c.id):
        exts = [
            _Ext(pat)
            .add(f"Set({cv.CITY}={city.id})")
            .add(f"Set({cv.FALLBACK_CENTRE}={fallbacks[city.id]})")
            .add(f"Goto({names.CTX_INBOUND},{v('EXTEN')},1)")
            for pat in ("_X.", "_+X.")
        ]
        parts.append(_context(f"{names.CTX_INBOUND}-{city.id}", f"trunk of {city.name}: the city is known", exts))

    route: list[_Ext] = []
    for pat in ("_X.", "_+X."):
        ext = _Ext(pat).add(f"NoOp(12345 routing for {v('EXTEN')})").add("Answer()")
        ext.add("Set(AGIEXITONHANGUP=yes)").add(f"Set(__{cv.CALL_ID}={v('UNIQUEID')})")
        ext.add(f"Set({cv.DIALLED}={v('EXTEN')})")  # EXTEN is "s" in the contexts after this one
        _ask(ext, opts, "route", f"{v('EXTEN')},{v(cv.CITY)}", "decided")
        # Controller down: an emergency line still reaches its own seats (the inbound context set its dial).
        ext.add(f"GotoIf({equals(cv.ACTION, Action.EMERGENCY.value)}?decided)")
        ext.add(f"Goto({names.CTX_FALLBACK},s,1)")
        ext.add(route_event(), "decided")
        ext.add(f"Goto({names.CTX_DISPATCH},s,1)")
        route.append(ext)
    route += _stall_exit(opts)
    parts.append(_context(names.CTX_ROUTE, "ask the controller; no sentinel = the general queue", route))

    disp = _Ext("s").add(f"GotoIf({equals(cv.MENU, '1')}?menu)")
    disp.add(f'GotoIf($["{v(cv.PROMPTS)}" = ""]?dispatch)', "play")
    disp.add(f"Playback({v(cv.PROMPTS)})")  # a missing prompt is skipped with a warning; the call goes on
    jumps = {
        Action.QUEUE: names.CTX_QUEUE,
        Action.SUBCENTRE: names.CTX_DIAL,
        Action.DEPARTMENT: names.CTX_DIAL,
        Action.EMERGENCY: names.CTX_EMERGENCY,
        Action.GUIDANCE: names.CTX_END,
        Action.RETIRED: names.CTX_END,
    }
    first = True
    for action, ctx in jumps.items():
        disp.add(f"GotoIf({equals(cv.ACTION, action.value)}?{ctx},s,1)", "dispatch" if first else None)
        first = False
    disp.add(f"Goto({names.CTX_FALLBACK},s,1)")
    _menu(disp)
    _ask(disp, opts, "ivr", ",".join(v(n) for n in (cv.DIALLED, cv.CITY, cv.IVR_CHOICE, cv.TOPIC)), "redecided")
    disp.add(f"Goto({names.CTX_FALLBACK},s,1)")
    disp.add(route_event(), "redecided")  # the menu's final decision replaces the first one
    disp.add("Goto(play)")
    parts.append(
        _context(
            names.CTX_DISPATCH,
            f"play the decision's prompts, dispatch on {cv.ACTION}; the 12345 menu first when {cv.MENU}=1",
            [disp, *_stall_exit(opts)],
        )
    )

    q = _Ext("s").add(f'GotoIf($["{v(cv.TARGET)}" = ""]?{names.CTX_FALLBACK},s,1)')
    # Queue()'s timeout "0" would time out at once: no wait limit means an empty timeout.
    q.add(f"ExecIf({equals(cv.OVERFLOW_AFTER, '0')}?Set({cv.OVERFLOW_AFTER}=))")
    q.add("Set(QUEUE_PRIO=0)").add(f"ExecIf({is_set(cv.PRIORITY)}?Set(QUEUE_PRIO={v(cv.PRIORITY)}))")
    _agent_visible(q)
    q.add(recording.gosub())
    q.add(SKILLED_ONLY)
    q.add(f"Queue({v(cv.TARGET)},tc{MEMBER_AFTER}{AGENT_SETUP},,,{v(cv.OVERFLOW_AFTER)})")
    q.add(f"GotoIf({is_set('MEMBERINTERFACE')}?{names.CTX_SURVEY},s,1)")
    q.add(f'GotoIf($["{v(cv.OVERFLOW)}" = ""]?{names.CTX_FALLBACK},s,1)', "overflow")
    q.add(user_event(cv.EVENT_OVERFLOW, [("CallId", v(cv.CALL_ID)), ("From", v(cv.TARGET)), ("To", v(cv.OVERFLOW))]))
    q.add(f"Playback({cv.sound('overflow')})")
    q.add(SKILLED_ONLY)
    q.add(f"Queue({v(cv.OVERFLOW)},tc{MEMBER_AFTER}{AGENT_SETUP})")
    q.add(f"GotoIf({is_set('MEMBERINTERFACE')}?{names.CTX_SURVEY},s,1)")
    q.add(f"Goto({names.CTX_FALLBACK},s,1)")
    parts.append(
        _context(names.CTX_QUEUE, "the decided queue, then its overflow; the agent sees line and expert group", [q])
    )

    d = _Ext("s").add(f'GotoIf($["{v(cv.DIAL)}" = ""]?nodial)')
    _agent_visible(d)
    d.add(f"Dial({v(cv.DIAL)},{opts.dial_timeout},gt)")
    d.add(f"GotoIf({equals('DIALSTATUS', 'ANSWER')}?{names.CTX_SURVEY},s,1)")
    d.add(f'GotoIf($["{v(cv.OVERFLOW)}" = ""]?{names.CTX_FALLBACK},s,1)', "nodial")
    d.add(f"Set({cv.TARGET}={v(cv.OVERFLOW)})").add(f"Set({cv.OVERFLOW}=)")
    d.add(f"Goto({names.CTX_QUEUE},s,1)")
    parts.append(
        _context(names.CTX_DIAL, "sub-centre or department seats; unanswered or busy: the overflow queue", [d])
    )

    e = _Ext("s").add(f"Dial({v(cv.DIAL)},{opts.dial_timeout * 2},g)")
    e.add(f"GotoIf({equals('DIALSTATUS', 'ANSWER')}?done)")
    e.add(f"Playback({cv.sound('emergency-hint')})")
    e.add(f"Dial({v(cv.DIAL)},{opts.dial_timeout * 2},g)")
    e.add("Hangup()", "done")
    parts.append(_context(names.CTX_EMERGENCY, "emergency lines: their own seats only, never a 12345 queue", [e]))

    parts.append(
        _context(
            names.CTX_END, "guidance / retired: the prompts were played, release the call", [_Ext("s").add("Hangup()")]
        )
    )

    # The decided centre, else the trunk's or dialled city's, else the region's: its general queue.
    f = _Ext("s").add(f'ExecIf($["{v(cv.CENTRE)}" = ""]?Set({cv.CENTRE}={v(cv.FALLBACK_CENTRE)}))')
    f.add(f'ExecIf($["{v(cv.CENTRE)}" = ""]?Set({cv.CENTRE}={centre}))')
    f.add(f"Set({cv.TARGET}={names.queue_name(v(cv.CENTRE), 'general')})")
    f.add(f"NoOp(no decision from the controller: {v(cv.TARGET)})")
    f.add(route_event(Action=cv.FALLBACK_ACTION))
    _agent_visible(f)
    f.add(recording.gosub())
    f.add(SKILLED_ONLY)
    f.add(f"Queue({v(cv.TARGET)},tc{MEMBER_AFTER}{AGENT_SETUP})")
    f.add(f"GotoIf({is_set('MEMBERINTERFACE')}?{names.CTX_SURVEY},s,1)")
    f.add(f"Playback({cv.sound('goodbye')})").add("Hangup()")
    parts.append(
        _context(
            names.CTX_FALLBACK,
            "controller down or undecided: the 12345 general queue of the call's centre or city, else the region's",
            [f],
        )
    )

    s = _Ext("s").add(f"NoOp(survey for {v(cv.CALL_ID)})")
    s.add(f"Read({cv.RATING},{cv.sound('survey-ask')},1,,1,{RATING_WAIT})")
    for key in RATING_KEYS:
        s.add(f"GotoIf({equals(cv.RATING, key)}?rated)")
    s.add("Hangup()")  # no valid key: nothing to record
    s.add(user_event(cv.EVENT_RATING, [("CallId", v(cv.CALL_ID)), ("Rating", v(cv.RATING))]), "rated")
    s.add(f"Playback({cv.sound('survey-thanks')})")
    s.add("Hangup()")
    parts.append(_context(names.CTX_SURVEY, "after the agent hangs up (Queue/Dial continue options c / g)", [s]))

    # "__": the keys are pressed on the agent's PJSIP leg, two hops on (Local;1 -> Local;2 -> Dial in hotline-agents).
    setup = _Ext("s").add(f"Set(__DYNAMIC_FEATURES={names.FEATURE_GROUP})")
    # Inherited down to the agent's phone leg (Local member -> Dial(PJSIP/...)): what a supervisor may spy on.
    setup.add(f"Set(__{cv.AGENT_LEG}=1)")
    setup.add(f"Set(__TRANSFER_CONTEXT={names.CTX_XFER_OUT})").add("Return()")
    parts.append(
        _context(names.CTX_AGENT_SETUP, "agent leg before it rings: one-key transfers, atxfer context", [setup])
    )

    # Any agent id (agent1001, 1001): _X. would match digits only.
    # F: when the caller side leaves the bridge (hung up, or moved by the agent's own *3 key), the agent's
    # leg goes on at hotline-threeway,agent (into the conference when *3 asked for it, else hung up).
    # Without it Asterisk hangs the agent up, and *3 cannot redirect the agent itself from inside the
    # feature's Gosub (app_stack: "An async goto just messed up our execution location").
    a = _Ext(AGENT_PATTERN).add(f"Dial(PJSIP/{v('EXTEN')},,t{MEMBER_AFTER})").add("Hangup()")
    # The pattern also matches Asterisk's own "h": without this literal "h" (a literal beats a pattern),
    # every agent leg ran Dial(PJSIP/h) when it hung up (seen on Asterisk 22).
    h = _Ext("h").add("NoOp(agent leg ended)")
    parts.append(
        _context(
            names.CTX_AGENTS,
            "queue members: member => Local/<agent>@hotline-agents/n,0,<name>,PJSIP/<agent>",
            [a, h],
        )
    )

    targets = transfer_targets(cfg)
    outs: list[_Ext] = []
    xfers: list[_Ext] = []
    for t in targets:
        # The transfer target must not inherit the agents' transfer keys.
        o = _Ext(t.code).add(f"NoOp({t.label})").add("Set(__DYNAMIC_FEATURES=)").add(f"Set(__{cv.AGENT_LEG}=)")
        if t.queue is not None:
            o.add(recording.gosub(f"-t{t.code}"))
            o.add(SKILLED_ONLY)
            o.add(f"Queue({t.queue},tc{MEMBER_AFTER}{AGENT_SETUP})")
        else:
            o.add(f"Dial({t.dial},{opts.dial_timeout * 2},g)")
        outs.append(o.add("Hangup()"))
        xfers.append(
            _Ext(f"b{t.code}")
            .add(f"ChannelRedirect({v('BRIDGEPEER')},{names.CTX_XFER_OUT},{t.code},1)")
            .add(transfer_event(t.key, "blind"))
            .add("Return()")
        )
        # Three-way from the agent's key: the caller side goes to the conference; the agent's own leg
        # follows through Dial's F option (HOTLINE_THREEWAY, read at hotline-threeway,agent); the target
        # is called into the same conference, and the key waits for its answer so the audit says whether
        # the target came (ORIGINATE_STATUS), never "ok" when it did not.
        t3 = _Ext(f"t{t.code}").add(f"Set({cv.THREEWAY}=1)")
        t3.add(f"ChannelRedirect({v('BRIDGEPEER')},{names.CTX_CONF},s,1)")
        t3.add(f'GotoIf($["{v("CHANNELREDIRECT_STATUS")}" != "SUCCESS"]?moved)')
        t3.add(
            f"Originate(Local/{t.code}@{names.CTX_XFER_OUT},exten,{names.CTX_CONF},s,1,{opts.dial_timeout * 2},"
            f"v({cv.CALL_ID}={v(cv.CALL_ID)}^{cv.CENTRE}={v(cv.CENTRE)}))"
        )
        t3.add(transfer_event(t.key, "threeway", "ORIGINATE_STATUS"))
        t3.add("Return()")
        t3.add(f"Set({cv.THREEWAY}=)", "moved")  # the caller had gone: the agent stays where it is
        t3.add(transfer_event(t.key, "threeway")).add("Return()")
        xfers.append(t3)
    parts.append(_context(names.CTX_XFER_OUT, "transfer targets (also the atxfer TRANSFER_CONTEXT)", outs))
    parts.append(
        _context(
            names.CTX_XFER_CMD,
            "the same targets for attended transfers asked by the CLI or MQTT (already audited there)",
            [],
            includes=(names.CTX_XFER_OUT,),
        )
    )
    parts.append(_context(names.CTX_XFER, "one-key blind (b<code>) and three-way (t<code>) transfers", xfers))
    c = _Ext("s").add(f"ConfBridge(hotline-{v(cv.CALL_ID)},hotline_bridge,hotline_user)").add("Hangup()")
    after = _Ext(AGENT_AFTER).add(f"GotoIf({equals(cv.THREEWAY, '1')}?{names.CTX_CONF},s,1)").add("Hangup()")
    parts.append(
        _context(
            names.CTX_CONF,
            f"three-way calls: caller, agent and target in one ConfBridge; {AGENT_AFTER}: an agent's leg after its caller left",
            [c, after],
        )
    )
    # Hand-over (110 -> 12345): marked for the call record, then the general queue as the fallback does.
    ho = _Ext("s").add(
        user_event(cv.EVENT_HANDOVER, [("CallId", v(cv.CALL_ID)), ("From", v(cv.TARGET)), ("Channel", v("CHANNEL"))])
    )
    ho.add(f"Goto({names.CTX_FALLBACK},s,1)")
    parts.append(_context(names.CTX_HANDOVER, "a call handed over to 12345 by an emergency line", [ho]))
    parts.append(recording.record_context(cfg))
    parts.append(spy_context())
    return "\n".join(parts)
