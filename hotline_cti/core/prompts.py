"""Which prompt a line plays in each phase, and the text of template prompts.

Per-line prompts are instances of catalogue templates: ``transition-12300``
is the ``transition`` template filled with line 12300's name and number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from hotline_cti.core.model import Mode


class _Defaults(Protocol):
    transition_prompt: str
    retired_prompt: str
    guidance_prompt: str


class _Prompts(Protocol):
    transition: str | None
    retired: str | None
    guidance: str | None
    before: str | None


class _Line(Protocol):
    number: str
    mode: Mode

    @property
    def prompts(self) -> _Prompts: ...


def line_prompt_ids(line: _Line, defaults: _Defaults) -> dict[str, str]:
    """The prompt ids ``line`` may play, by phase name (transition / retired / guidance / before)."""
    out: dict[str, str] = {}
    own = line.prompts
    if line.mode is Mode.MERGE:
        out["transition"] = own.transition or defaults.transition_prompt.format(number=line.number)
        out["retired"] = own.retired or defaults.retired_prompt.format(number=line.number)
    elif own.transition:
        out["transition"] = own.transition
    if line.mode is Mode.GUIDANCE:
        out["guidance"] = own.guidance or defaults.guidance_prompt.format(number=line.number)
    if own.before:
        out["before"] = own.before
    return out


def template_instance(prompt_id: str, templates: Mapping[str, str]) -> tuple[str, str] | None:
    """Split ``transition-12300`` into (template name, number) if it names a template instance."""
    name, sep, number = prompt_id.rpartition("-")
    if sep and name in templates and number.isdigit():
        return name, number
    return None


def render_template(template: str, *, name: str, number: str, unit: str = "", channel: str = "") -> str:
    """Fill a catalogue template; unknown placeholders are an error in the catalogue."""
    return template.format(name=name, number=number, unit=unit, channel=channel or "拨打12345政务服务便民热线咨询")
