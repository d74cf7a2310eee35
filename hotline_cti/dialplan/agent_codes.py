"""Agents' feature codes in extensions.conf (issue 18): log in / out and pause from the agent's own phone.

Dialled from the phone (not in-call keys, so they share nothing with features.conf):

* ``*45``: log in to every queue of the agent's skills (penalties from the YAML), or log out of them
  when already in (the agent's first queue says which);
* ``*46<d>``: pause in every queue with the pause reason whose code is ``d`` (``agent_settings``);
* ``*47``: end the pause.

The agent is the calling PJSIP endpoint (``${CHANNEL(endpoint)}``): sites put
``include => hotline-agent-codes`` in their agents' phone context. Asterisk reports each change on
AMI (QueueMemberAdded / Removed / Pause), which the events service stores. The phone hears two
short high beeps for "in" or "paused", one low beep for "out" or "back"; an endpoint that is not an
agent of the YAML hears a busy tone.
"""

from __future__ import annotations

from hotline_cti.config.schema import MergerConfig
from hotline_cti.dialplan import names
from hotline_cti.dialplan.extensions import _context, _Ext, v
from hotline_cti.dialplan.members import agent_plans

LOGIN_TOGGLE = "*45"
PAUSE_PREFIX = "*46"
UNPAUSE = "*47"
AGENT_VAR = "HOTLINE_AGENT"
REASON_VAR = "HOTLINE_PAUSE_REASON"
CTX_CODES = "hotline-agent-codes"
CTX_TOGGLE = "hotline-agent-toggle"
CTX_PAUSE = "hotline-agent-pause"
BEEP_IN = "Playtones(!880/150,!0/100,!880/150)"
BEEP_OUT = "Playtones(!440/300)"
BUSY = "Playtones(busy)"


def _done(ext: _Ext, tones: str) -> _Ext:
    return ext.add(tones).add("Wait(1)").add("Hangup()")


def render_agent_codes(cfg: MergerConfig) -> str:
    """The contexts of the agents' feature codes (appended to extensions.conf)."""
    endpoint = f"Set({AGENT_VAR}={v('CHANNEL(endpoint)')})"
    codes = [_Ext(LOGIN_TOGGLE).add("Answer()").add(endpoint).add(f"Goto({CTX_TOGGLE},{v(AGENT_VAR)},1)")]
    for reason in sorted(cfg.agent_settings.pause_reasons, key=lambda r: r.code):
        code = _Ext(f"{PAUSE_PREFIX}{reason.code}").add("Answer()").add(endpoint)
        codes.append(code.add(f"Set({REASON_VAR}={reason.id})").add(f"Goto({CTX_PAUSE},s,1)"))
    codes.append(_Ext(UNPAUSE).add("Answer()").add(endpoint).add(f"Set({REASON_VAR}=)").add(f"Goto({CTX_PAUSE},s,1)"))
    parts = [
        _context(
            CTX_CODES,
            f"agents' phones (include it): {LOGIN_TOGGLE} log in/out, {PAUSE_PREFIX}<reason code> pause, {UNPAUSE} back",
            codes,
        )
    ]

    toggles: list[_Ext] = []
    for agent, plan in sorted(agent_plans(cfg).items()):
        if not plan.memberships:
            continue
        iface = plan.interface
        first = plan.memberships[0].queue
        # In its first queue already: log out. "/<id>@" (of Local/<id>@...) matches no other agent's interface.
        found = v(f'REGEX("/{agent}@" {v(f"QUEUE_MEMBER_LIST({first})")})')
        t = _Ext(agent).add(f"GotoIf($[{found}]?out)")
        for m in plan.memberships:
            t.add(f"AddQueueMember({m.queue},{iface},{m.penalty},,{agent},{plan.state_interface})")
        _done(t, BEEP_IN)
        t.add(f"RemoveQueueMember({plan.memberships[0].queue},{iface})", "out")
        for m in plan.memberships[1:]:
            t.add(f"RemoveQueueMember({m.queue},{iface})")
        toggles.append(_done(t, BEEP_OUT))
    toggles.append(_done(_Ext("i").add(f"NoOp(not an agent of the YAML: {v(AGENT_VAR)})"), BUSY))
    parts.append(_context(CTX_TOGGLE, f"{LOGIN_TOGGLE}: log in to every queue of the agent's skills, or out", toggles))

    # PauseQueueMember with no queue pauses the member in every queue (app_queue); the reason is the YAML's id.
    iface = f"Local/{v(AGENT_VAR)}@{names.CTX_AGENTS}/n"
    p = _Ext("s").add(f'GotoIf($["{v(REASON_VAR)}" = ""]?back)')
    p.add(f"PauseQueueMember(,{iface},,{v(REASON_VAR)})")
    p.add(f'GotoIf($["{v("PQMSTATUS")}" != "PAUSED"]?unknown)')
    _done(p, BEEP_IN)
    p.add(f"UnpauseQueueMember(,{iface})", "back")
    p.add(f'GotoIf($["{v("UPQMSTATUS")}" != "UNPAUSED"]?unknown)')
    _done(p, BEEP_OUT)
    p.add(f"NoOp(not logged in: {v(AGENT_VAR)})", "unknown")
    _done(p, BUSY)
    parts.append(_context(CTX_PAUSE, f"{PAUSE_PREFIX}<code> / {UNPAUSE}: pause with a reason, or back", [p]))
    return "\n".join(parts)
