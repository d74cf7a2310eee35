"""Which line a live call is on, read from the channel itself (AMI ``Getvar``), to check a hand-over.

A hand-over (110 hands a non-police call to 12345) names the line handing over (``--from 110``). That
claim is not taken on trust: the caller leg of every call routed by hotline-cti carries the routing
variables the generated dialplan and the controller set on it. A call that came in on an emergency line
has ``HOTLINE_ACTION=emergency`` and ``HOTLINE_TARGET=<line>`` (set by ``hotline-inbound`` and again by
the controller's decision); a 12345 call has another action (``queue``, ``subcentre``...). Only a call
whose own variables say it is on the claimed line may be handed over; anything else, including a
channel whose variables cannot be read, is refused (fail closed: moving a citizen's live call is worse
than asking 110 to try again).
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.ami.client import AmiClient, AmiError
from hotline_cti.core.model import Action
from hotline_cti.core.transfer import ChannelFacts

LINE_VARS = (cv.ACTION, cv.TARGET, cv.ORIGIN)


@dataclass(frozen=True, slots=True)
class ChannelLine:
    """The routing variables of a call's caller leg and the line they put it on."""

    channel: str
    variables: dict[str, str]

    @property
    def line(self) -> str:
        """The emergency line the call came in on, or ``12345`` for every other call."""
        if self.variables.get(cv.ACTION) == Action.EMERGENCY.value:
            return self.variables.get(cv.TARGET, "") or self.variables.get(cv.ORIGIN, "")
        return "12345"

    def describe(self) -> str:
        """``HOTLINE_ACTION=queue, HOTLINE_TARGET=gx-general`` (for the refusal reason)."""
        shown = ", ".join(f"{k}={self.variables.get(k) or '(unset)'}" for k in (cv.ACTION, cv.TARGET))
        return shown


async def read_line(client: AmiClient, channel: str, timeout: float) -> ChannelLine:
    """``Getvar`` each of :data:`LINE_VARS` on ``channel``; raises AmiError when one cannot be read."""
    values: dict[str, str] = {}
    for name in LINE_VARS:
        answer = await client.action("Getvar", {"Channel": channel, "Variable": name}, timeout=timeout, check=False)
        if not answer.success:
            raise AmiError(f"Getvar {name} on {channel}: {answer.get('Message', 'error')}")
        values[name] = answer.get("Value", "") or ""
    return ChannelLine(channel, values)


async def handover_refusal(client: AmiClient, facts: ChannelFacts, from_line: str, timeout: float) -> str | None:
    """Why a hand-over of the call on ``facts`` from ``from_line`` must be refused; None when it is really there."""
    leg = facts.caller_leg
    try:
        line = await read_line(client, leg, timeout)
    except AmiError as exc:
        return f"cannot confirm the call's line, hand-over refused: {exc}"
    if line.line != from_line:
        return (
            f"the call on {leg} is on line {line.line or '(unknown)'} ({line.describe()}), not on {from_line}:"
            " hand-over refused"
        )
    return None
