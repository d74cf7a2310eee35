"""The decision's public forms: skill tags and the JSON-ready dict scripts read."""

from __future__ import annotations

from hotline_cti.core.model import Action, Call, Decision, Mode, Phase


def decision(**kw: object) -> Decision:
    fields: dict[str, object] = dict(
        number="12315",
        form="national",
        mode=Mode.PARALLEL,
        phase=Phase.AFTER,
        action=Action.QUEUE,
        target="gx-l12315",
        dial=None,
        centre="gx",
        city="guilin",
        prompts=("a", "b"),
        origin="12315",
        expert="e12315",
        expert_queue="gx-expert-e12315",
        escalation=None,
        priority=2,
        overflow="gx-general",
        overflow_after=90,
        menu=False,
        hangup=False,
        reason="why",
    )
    fields.update(kw)
    return Decision(**fields)  # type: ignore[arg-type]


def test_skills() -> None:
    assert decision().skills == ("line:12315", "expert:e12315")
    assert decision(expert=None).skills == ("line:12315",)
    assert decision(origin=None).skills == ("expert:e12315",)
    assert decision(origin=None, expert="").skills == ()


def test_to_dict_is_json_ready() -> None:
    assert decision(warnings=("w",)).to_dict() == {
        "number": "12315",
        "form": "national",
        "mode": "parallel",
        "phase": "after",
        "action": "queue",
        "target": "gx-l12315",
        "dial": None,
        "centre": "gx",
        "city": "guilin",
        "prompts": ["a", "b"],
        "origin": "12315",
        "expert": "e12315",
        "expert_queue": "gx-expert-e12315",
        "escalation": None,
        "priority": 2,
        "overflow": "gx-general",
        "overflow_after": 90,
        "menu": False,
        "hangup": False,
        "reason": "why",
        "warnings": ["w"],
        "skills": ["line:12315", "expert:e12315"],
    }
    data = decision().to_dict()
    assert data["warnings"] == [] and type(data["mode"]) is str and type(data["phase"]) is str
    assert type(data["action"]) is str


def test_call_defaults() -> None:
    assert Call("12345") == Call("12345", None, None, None, None)
