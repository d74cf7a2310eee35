"""``[hotline-spy]``: a supervisor's phone listens, whispers or barges in on one agent leg (Asterisk ChanSpy).

Only AMI reaches it: ``hotline-cti spy`` and the wallboard originate the supervisor's phone into
``hotline-spy,<mode>,1`` with ``HOTLINE_SPY_TARGET`` set to an agent leg they checked is live, bridged
and marked ``HOTLINE_AGENT_LEG=1`` (by the agent-setup Gosub on queue members' channels, inherited by the
agent's phone leg). No context
includes it, so no phone can dial it. ChanSpy takes a channel-name *prefix*: an empty target would spy
on any channel, so an empty one hangs up at once.
"""

from __future__ import annotations

from hotline_cti import channel_vars as cv

CTX_SPY = "hotline-spy"
# q: no beep or name announced to anyone; E: end with the spied-on channel; S: end when nothing is left to spy on.
MODES = {"listen": "qES", "whisper": "qESw", "barge": "qESB"}


def spy_context() -> str:
    """The context text (deterministic)."""
    lines = [
        "; supervisor listen / whisper / barge: AMI Originate of the supervisor's phone, HOTLINE_SPY_TARGET = an agent leg",
        f"[{CTX_SPY}]",
    ]
    for mode, options in MODES.items():
        lines += [
            f'exten => {mode},1,GotoIf($["${{{cv.SPY_TARGET}}}" = ""]?{CTX_SPY},none,1)',
            f" same => n,ChanSpy(${{{cv.SPY_TARGET}}},{options})",
            " same => n,Hangup()",
        ]
    lines += ["exten => none,1,NoOp(no agent leg to spy on)", " same => n,Hangup()"]
    return "\n".join(lines) + "\n"
