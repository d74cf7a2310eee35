"""The IVR prompt catalogue (ivr_prompts/catalogue.yaml): prompt id -> text, plus per-line templates.

A prompt id is also the sound file's name: Asterisk plays ``hotline/<id>``.
Three sources give a config's prompts, the first that has an id wins:

1. the merger file's own ``prompts:`` section (region wording, e.g. Yuncheng's
   verbatim transition prompt);
2. the catalogue's ``prompts:``;
3. a catalogue template filled for one line: ``transition-12300`` is the
   ``transition`` template with line 12300's name and number.

It lives with the config because loading a merger file checks every prompt it names against it.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator

from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.config.yamlsource import read_yaml, validation_problems
from hotline_cti.core.prompts import line_prompt_ids, render_template, template_instance
from hotline_cti.resources import shipped

CATALOGUE_FILE = "catalogue.yaml"
# Overrides the directory that holds catalogue.yaml (tests, or a deployment's own wording).
ENV_PROMPTS_DIR = "HOTLINE_PROMPTS_DIR"
# Placeholders a template may use; render_template fills exactly these.
TEMPLATE_FIELDS = frozenset({"name", "number", "unit", "channel"})
# What the 12345 IVR itself plays, whatever the lines: menus, hints, queue announcements, survey.
IVR_PROMPTS = (
    "menu-main",
    "menu-topic",
    "emergency-hint",
    "invalid-choice",
    "queue-wait",
    "overflow",
    "closed",
    "survey-ask",
    "survey-thanks",
    "goodbye",
)
# A prompt id names a file: keep it to characters every file system and Asterisk accept.
PROMPT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

Lang = Literal["zh", "en"]


def _prompt_id(value: str) -> str:
    if not PROMPT_ID.match(value):
        raise ValueError(f"{value!r} is not a valid prompt id: use lower-case letters, digits, '-' and '_'")
    return value


PromptId = Annotated[str, AfterValidator(_prompt_id)]


class Text(BaseModel):
    """One prompt's wording: Mandarin (rendered to audio) and an optional English gloss."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    zh: str
    en: str | None = None

    @field_validator("zh")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the zh text is empty")
        return value


class Catalogue(BaseModel):
    """The whole catalogue file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    prompts: dict[PromptId, Text]
    templates: dict[PromptId, Text] = {}

    @field_validator("templates")
    @classmethod
    def _known_fields(cls, value: dict[str, Text]) -> dict[str, Text]:
        for name, text in value.items():
            for lang, wording in (("zh", text.zh), ("en", text.en)):
                if wording is None:
                    continue
                try:
                    fields = {f for _, f, _, _ in string.Formatter().parse(wording) if f is not None}
                except ValueError as exc:
                    raise ValueError(f"template {name!r} ({lang}): {exc}") from None
                unknown = fields - TEMPLATE_FIELDS
                if unknown:
                    raise ValueError(
                        f"template {name!r} ({lang}) uses unknown placeholder(s) {sorted(unknown)}; "
                        f"allowed: {sorted(TEMPLATE_FIELDS)}"
                    )
        return value

    def template_texts(self, lang: Lang = "zh") -> dict[str, str]:
        """Template name -> wording in ``lang`` (zh where en is missing)."""
        return {name: _pick(text, lang) for name, text in self.templates.items()}


def _pick(text: Text, lang: Lang) -> str:
    return text.en if lang == "en" and text.en else text.zh


def default_path() -> Path:
    """$HOTLINE_PROMPTS_DIR/catalogue.yaml, else the checkout's ivr_prompts/catalogue.yaml, else the packaged copy."""
    env = os.environ.get(ENV_PROMPTS_DIR)
    if env:
        return Path(env) / CATALOGUE_FILE
    return shipped(f"ivr_prompts/{CATALOGUE_FILE}")


@dataclass(frozen=True)
class _CacheKey:
    path: Path
    mtime_ns: int
    size: int


_cache: dict[Path, tuple[_CacheKey, Catalogue]] = {}


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate the catalogue; raise :class:`ConfigError` with every problem as file:line:col.

    ``path`` is the YAML file or the directory holding ``catalogue.yaml``;
    None means :func:`default_path`. Results are cached per file and mtime.
    """
    file = default_path() if path is None else Path(path)
    if file.is_dir():
        file = file / CATALOGUE_FILE
    file = file.resolve()
    try:
        st = file.stat()
    except OSError:
        hint = f" (set ${ENV_PROMPTS_DIR} to the directory that holds {CATALOGUE_FILE})" if path is None else ""
        raise ConfigError([Problem(None, "", f"{file}: no prompt catalogue there{hint}")]) from None
    key = _CacheKey(file, st.st_mtime_ns, st.st_size)
    hit = _cache.get(file)
    if hit is not None and hit[0] == key:
        return hit[1]
    catalogue = _validate(read_yaml(file))
    _cache[file] = (key, catalogue)
    return catalogue


def _validate(tree: Any) -> Catalogue:
    try:
        return Catalogue.model_validate(tree)
    except ValidationError as exc:
        problems = validation_problems(exc, tree, "a prompt has 'zh' and optional 'en'")
        raise ConfigError(problems) from None


def _numbers(model: MergerConfig) -> dict[str, Hotline]:
    """Every line number and alias of the config -> its line."""
    out: dict[str, Hotline] = {}
    for line in model.hotlines:
        for number in (line.number, *line.aliases):
            out.setdefault(number, line)
    return out


def known_prompt_ids(catalogue: Catalogue, model: MergerConfig) -> frozenset[str]:
    """Every prompt id playable under ``model``: catalogue, the config's ``prompts:``, template instances."""
    ids = set(catalogue.prompts) | set(model.prompts)
    for number in _numbers(model):
        ids.update(f"{template}-{number}" for template in catalogue.templates)
    return frozenset(ids)


def prompt_text(prompt_id: str, catalogue: Catalogue, model: MergerConfig, lang: Lang = "zh") -> str:
    """The wording of ``prompt_id`` under ``model``; templates are filled with the line's details.

    The config's own ``prompts:`` have one text (Mandarin) and are returned for
    either language. Raises KeyError naming the id when nothing defines it.
    """
    if prompt_id in model.prompts:
        return model.prompts[prompt_id]
    if prompt_id in catalogue.prompts:
        return _pick(catalogue.prompts[prompt_id], lang)
    templates = catalogue.template_texts(lang)
    instance = template_instance(prompt_id, templates)
    if instance is not None:
        name, number = instance
        line = _numbers(model).get(number)
        if line is None:
            raise KeyError(f"prompt {prompt_id!r}: {number} is not a line (or alias) of region {model.region.id!r}")
        return render_template(
            templates[name], name=line.name, number=number, unit=line.unit, channel=line.channel or ""
        )
    raise KeyError(f"prompt {prompt_id!r} is in neither the catalogue nor region {model.region.id!r}'s 'prompts'")


def _line_prompts(line: Any, defaults: Any) -> dict[str, str]:
    # Any: core.prompts types these with Protocols of settable attributes, which frozen pydantic models are not.
    return line_prompt_ids(line, defaults)


def prompts_for_config(model: MergerConfig, catalogue: Catalogue, lang: Lang = "zh") -> dict[str, str]:
    """Exactly the prompts ``model``'s routes and IVR can play, id -> text, in a stable order.

    The welcome prompt, the IVR's own prompts (:data:`IVR_PROMPTS`), queue
    announcements, each line's transition/retired/guidance/before prompts (for
    its number; aliases play the line's prompts) and the region's own ``prompts:``.
    """
    ids: list[str] = [model.defaults.welcome_prompt, *IVR_PROMPTS]
    ids += [q.announce for q in model.queues if q.announce]
    for line in model.hotlines:
        ids += _line_prompts(line, model.defaults).values()
    ids += list(model.prompts)
    out: dict[str, str] = {}
    for prompt_id in ids:
        if prompt_id not in out:
            out[prompt_id] = prompt_text(prompt_id, catalogue, model, lang)
    return out
