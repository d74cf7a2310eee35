"""Position and expected-wait announcements (排队播报): the YAML, queues.conf, and the Mandarin sound set."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.catalogue import QUEUE_ANNOUNCEMENT_PROMPTS, load_catalogue, prompts_for_config
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all
from tests.conftest import SMALL_YAML


def config(tmp_path: Path, extra: str = "", general: str | None = None) -> Path:
    text = SMALL_YAML
    if general is not None:
        text = text.replace("  - {id: general, name: 综合}\n", general, 1)
    path = tmp_path / "cfg.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def blocks(path: Path) -> dict[str, str]:
    text = render_all(load_config(path).model, RenderOptions())["queues.conf"]
    return {b.split("]")[0].lstrip("["): b for b in text.split("\n\n") if b.startswith("[")}


def test_region_announcements_for_every_queue_and_a_queue_of_its_own(tmp_path: Path) -> None:
    own = "  - id: general\n    name: 综合\n    announcements: {position: false, holdtime: always, frequency: 90}\n"
    path = config(tmp_path, "announcements: {frequency: 30, periodic: 60, round_seconds: 10}\n", own)
    b = blocks(path)
    complaint = b["gx-complaint"]
    for line in (
        "announce-position=yes",
        "announce-position-only-up=yes",
        "announce-holdtime=once",
        "announce-frequency=30",
        "min-announce-frequency=15",
        "announce-round-seconds=10",
        "queue-thereare=hotline/queue-thereare",
        "queue-youarenext=hotline/queue-youarenext",
        "queue-minutes=hotline/queue-minutes",
        "periodic-announce-frequency=60",
    ):
        assert line in complaint.splitlines(), line
    assert "announce-position=no" not in complaint
    general = b["gx-general"].splitlines()
    assert "announce-position=no" in general and "announce-holdtime=yes" in general
    assert "announce-frequency=90" in general and "periodic-announce-frequency=45" in general
    assert "announce-frequency=30" in b["gx-expert-e12315"].splitlines()  # expert seats too
    ext = render_all(load_config(path).model, RenderOptions())["extensions.conf"]
    assert "Set(CHANNEL(language)=zh)" in ext  # app_queue says the numbers with sounds/zh/digits


def test_without_announcements_the_queues_stay_as_they_were(tmp_path: Path) -> None:
    b = blocks(config(tmp_path))
    assert "announce-position=no" in b["gx-general"] and "queue-thereare" not in b["gx-general"]
    assert (
        "CHANNEL(language)" not in render_all(load_config(config(tmp_path)).model, RenderOptions())["extensions.conf"]
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("announcements: {holdtime: sometimes}", "announcements.holdtime"),
        ("announcements: {frequency: -1}", "announcements.frequency"),
        ("announcements: {round_seconds: 7}", "is not one of 0, 5, 10, 15, 20, 30"),
        ("announcements: {postion: true}", "unknown key 'postion'"),
    ],
)
def test_bad_announcements_are_named_with_their_line(tmp_path: Path, section: str, message: str) -> None:
    path = config(tmp_path, section + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = [str(p) for p in info.value.problems]
    line = len(path.read_text(encoding="utf-8").splitlines())
    assert f"cfg.yaml:{line}:" in problem and message in problem


def test_the_queue_prompts_are_in_the_rendered_set_only_when_announced(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    plain = prompts_for_config(load_config(config(tmp_path)).model, catalogue)
    assert not set(QUEUE_ANNOUNCEMENT_PROMPTS) & set(plain)
    announced = prompts_for_config(load_config(config(tmp_path, "announcements: {}\n")).model, catalogue)
    assert set(QUEUE_ANNOUNCEMENT_PROMPTS) <= set(announced)
    assert announced["queue-thereare"] == "您现在排在第" and announced["queue-callswaiting"] == "位。"
    # Asterisk's Chinese number syntax (main/say.c) needs these files in sounds/zh/digits
    assert {f"digits/{n}" for n in (*range(10), 10, 20, 90, "hundred", "thousand", "wan")} <= set(catalogue.say)
    assert catalogue.say["digits/10"].zh == "十" and catalogue.say["digits/wan"].zh == "万"


def test_build_renders_the_queue_prompts_and_mandarin_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, "announcements: {}\n")
    out = tmp_path / "sounds"
    assert main(["prompts", "build", "--config", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{out / 'zh' / 'digits'}: rendered 24" in text
    for wav in (out / "gx" / "queue-thereare.wav", out / "zh" / "digits" / "7.wav", out / "zh" / "digits" / "wan.wav"):
        with wave.open(str(wav)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2) and w.getnframes() > 800
    manifest = json.loads((out / "zh" / "digits" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"]["7.wav"]["text"] == "七"
