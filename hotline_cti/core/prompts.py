"""Which prompt a line plays in each phase, and the text of template prompts.

Per-line prompts are instances of catalogue templates: ``transition-12300``
is the ``transition`` template filled with line 12300's name and number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from hotline_cti.core.model import Mode


class _Defaults(Protocol):
    @property
    def transition_prompt(self) -> str: ...
    @property
    def retired_prompt(self) -> str: ...
    @property
    def guidance_prompt(self) -> str: ...


class _Prompts(Protocol):
    @property
    def transition(self) -> str | None: ...
    @property
    def retired(self) -> str | None: ...
    @property
    def guidance(self) -> str | None: ...
    @property
    def before(self) -> str | None: ...


class _Line(Protocol):
    @property
    def number(self) -> str: ...
    @property
    def mode(self) -> Mode: ...
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
