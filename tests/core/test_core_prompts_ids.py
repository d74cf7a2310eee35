"""Which prompt ids a line plays per phase (core/prompts.py), and template instances and their text."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hotline_cti.config.schema import Defaults
from hotline_cti.core.model import Mode
from hotline_cti.core.prompts import line_prompt_ids, render_template, template_instance


@dataclass
class Own:
    transition: str | None = None
    retired: str | None = None
    guidance: str | None = None
    before: str | None = None


@dataclass
class Line:
    number: str
    mode: Mode
    prompts: Own = field(default_factory=Own)


DEFAULTS = Defaults(transition_prompt="t-{number}", retired_prompt="r-{number}", guidance_prompt="g-{number}")


@pytest.mark.parametrize(
    ("line", "ids"),
    [
        (Line("12300", Mode.MERGE), {"transition": "t-12300", "retired": "r-12300"}),
        (
            Line("12300", Mode.MERGE, Own(transition="mine-t", retired="mine-r", before="b")),
            {"transition": "mine-t", "retired": "mine-r", "before": "b"},
        ),
        (Line("12315", Mode.PARALLEL), {}),
        (Line("12315", Mode.PARALLEL, Own(transition="t", retired="ignored")), {"transition": "t"}),
        (Line("12339", Mode.GUIDANCE), {"guidance": "g-12339"}),
        (Line("12339", Mode.GUIDANCE, Own(guidance="own-g", before="b")), {"guidance": "own-g", "before": "b"}),
        (Line("12313", Mode.SUBCENTRE, Own(guidance="ignored", before="b")), {"before": "b"}),
        (Line("110", Mode.TRANSFER, Own(before="")), {}),
    ],
)
def test_line_prompt_ids(line: Line, ids: dict[str, str]) -> None:
    assert line_prompt_ids(line, DEFAULTS) == ids


def test_the_shipped_defaults_name_prompts_after_the_line() -> None:
    assert line_prompt_ids(Line("12300", Mode.MERGE), Defaults()) == {
        "transition": "transition-12300",
        "retired": "retired-12300",
    }
    assert line_prompt_ids(Line("12339", Mode.GUIDANCE), Defaults()) == {"guidance": "guidance-12339"}


TEMPLATES = {"transition": "…", "retired": "…", "a-b": "…"}


@pytest.mark.parametrize(
    ("prompt_id", "instance"),
    [
        ("transition-12300", ("transition", "12300")),
        ("retired-110", ("retired", "110")),
        ("a-b-123", ("a-b", "123")),
        ("transition-abc", None),
        ("transition-", None),
        ("transition12300", None),
        ("welcome-12300", None),
        ("-12300", None),
    ],
)
def test_template_instance(prompt_id: str, instance: tuple[str, str] | None) -> None:
    assert template_instance(prompt_id, TEMPLATES) == instance


def test_render_template() -> None:
    template = "{name}|{number}|{unit}|{channel}"
    assert render_template(template, name="旅游", number="12301") == "旅游|12301||拨打12345政务服务便民热线咨询"
    assert render_template(template, name="n", number="1", unit="u", channel="直接拨打12339") == "n|1|u|直接拨打12339"
    with pytest.raises(KeyError):
        render_template("{other}", name="n", number="1")
