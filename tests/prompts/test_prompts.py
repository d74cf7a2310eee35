"""IVR prompt catalogue, prompt checks in config validation, and the espeak-ng + sox sound build."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.catalogue import (
    ENV_PROMPTS_DIR,
    IVR_PROMPTS,
    Catalogue,
    default_path,
    known_prompt_ids,
    load_catalogue,
    prompt_text,
    prompts_for_config,
)
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Mode
from hotline_cti.prompts.build import MANIFEST, speech_text
from tests.paths import REPO

BASE_IDS = (
    "welcome",
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

CONFIG = """\
region: {{id: gx, name: 广西, level: province}}
centres:
  - {{id: gx, name: 自治区12345}}
queues:
  - {{id: general, name: 综合}}
departments:
  - {{id: d12348, name: 司法厅, dial: PJSIP/12348@sf}}
prompts:
  custom-hello: {hello}
hotlines:
  - {{number: 12300, name: 电信申诉, unit: 通信管理局, mode: merge, cutover: 2021-08-31, aliases: [12301]}}
  - {{number: 12315, name: 市场监管, unit: 市场监管局, mode: parallel, cutover: 2021-11-30}}
  - {{number: 12339, name: 国家安全, unit: 国家安全局, mode: guidance, channel: 登录网站举报}}
  - {{number: 12348, name: 法律服务, unit: 司法厅, mode: parallel, seats: department, department: d12348,
      prompts: {{transition: {transition}}}}}
"""


def write_config(tmp_path: Path, *, hello: str = "您好，这是测试提示。", transition: str = "custom-hello") -> Path:
    path = tmp_path / "region.yaml"
    path.write_text(CONFIG.format(hello=hello, transition=transition), encoding="utf-8")
    return path


@pytest.fixture
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture
def model(tmp_path: Path) -> MergerConfig:
    return load_config(write_config(tmp_path)).model


# ---------------------------------------------------------------- catalogue


def test_repository_catalogue_has_the_fixed_ids_and_templates(catalogue: Catalogue) -> None:
    assert set(BASE_IDS) <= set(catalogue.prompts)
    assert set(catalogue.templates) == {"transition", "retired", "guidance"}
    assert catalogue.prompts["welcome"].zh.startswith("您好")


def test_catalogue_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "catalogue.yaml").write_text("prompts:\n  welcome: {zh: 你好}\n", encoding="utf-8")
    monkeypatch.setenv(ENV_PROMPTS_DIR, str(tmp_path))
    assert default_path() == tmp_path / "catalogue.yaml"
    assert load_catalogue().prompts["welcome"].zh == "你好"
    assert load_catalogue().templates == {}


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    return [str(p) for p in err.value.problems]


def test_unknown_key_is_reported_with_its_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "prompts:\n  welcome:\n    zh: 你好\n    fr: bonjour\n")
    assert problems == [
        f"{tmp_path / 'catalogue.yaml'}:4:5: prompts.welcome.fr: unknown key 'fr' (a prompt has 'zh' and optional 'en')"
    ]


def test_missing_text_is_reported_with_the_prompt_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "prompts:\n  welcome: {zh: 你好}\n  goodbye:\n    en: bye\n")
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'catalogue.yaml'}:4:")
    assert "prompts.goodbye.zh: required key 'zh' is missing" in problems[0]


def test_blank_text_bad_id_and_unknown_placeholder_are_all_reported(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "prompts:\n  welcome: {zh: '  '}\n  Bad Id: {zh: x}\ntemplates:\n  transition: {zh: '{name}{numbr}'}\n",
    )
    joined = "\n".join(problems)
    assert ":2:" in joined and "the zh text is empty" in joined
    assert ":3:3:" in joined and "'Bad Id' is not a valid prompt id" in joined
    assert ":5:" in joined and "unknown placeholder(s) ['numbr']" in joined


def test_yaml_errors_name_the_place(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "prompts:\n  welcome: {zh: 你好\n")
    assert problems[0].startswith(f"{tmp_path / 'catalogue.yaml'}:")
    assert "YAML syntax" in problems[0]


def test_missing_catalogue_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no prompt catalogue there"):
        load_catalogue(tmp_path / "nowhere.yaml")


def test_catalogue_is_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text("prompts:\n  welcome: {zh: 你好}\n", encoding="utf-8")
    first = load_catalogue(path)
    assert load_catalogue(path) is first
    path.write_text("prompts:\n  welcome: {zh: 您好呀}\n", encoding="utf-8")
    assert load_catalogue(path).prompts["welcome"].zh == "您好呀"


# ---------------------------------------------------------------- ids and texts


def test_known_ids_include_template_instances_for_lines_and_aliases(catalogue: Catalogue, model: MergerConfig) -> None:
    known = known_prompt_ids(catalogue, model)
    for number in ("12300", "12301", "12315", "12339", "12348"):
        assert {f"transition-{number}", f"retired-{number}", f"guidance-{number}"} <= known
    assert "custom-hello" in known
    assert set(BASE_IDS) <= known
    assert "transition-12399" not in known


def test_prompt_text_fills_templates_in_chinese(catalogue: Catalogue, model: MergerConfig) -> None:
    assert prompt_text("transition-12300", catalogue, model) == (
        "您所拨打的电信申诉12300已并入12345政务服务便民热线，正在为您转接，请下次直接拨打12345。"
    )
    assert prompt_text("retired-12301", catalogue, model).startswith("您所拨打的电信申诉12301已停止使用")
    assert prompt_text("guidance-12339", catalogue, model) == (
        "您所拨打的国家安全局12339不在12345政务服务便民热线受理范围，请登录网站举报。"
    )
    assert "12300" in prompt_text("transition-12300", catalogue, model, lang="en")
    assert prompt_text("custom-hello", catalogue, model) == "您好，这是测试提示。"
    with pytest.raises(KeyError, match="12399 is not a line"):
        prompt_text("transition-12399", catalogue, model)
    with pytest.raises(KeyError, match="no-such"):
        prompt_text("no-such", catalogue, model)


def test_region_prompts_override_the_catalogue(tmp_path: Path, catalogue: Catalogue) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("  custom-hello:", "  closed: 下班了\n  custom-hello:"))
    model = load_config(path).model
    assert prompt_text("closed", catalogue, model) == "下班了"


def test_prompts_for_config_is_what_routes_and_ivr_play(catalogue: Catalogue, model: MergerConfig) -> None:
    prompts = prompts_for_config(model, catalogue)
    line_ids = {"transition-12300", "retired-12300", "guidance-12339"}
    assert set(prompts) == {"welcome", *IVR_PROMPTS, *line_ids, "custom-hello"}
    # parallel lines without their own prompt play none; aliases share the line's prompts
    assert not any(k.endswith(("-12315", "-12301")) for k in prompts)
    assert prompts["transition-12300"] == prompt_text("transition-12300", catalogue, model)


def test_yuncheng_merged_lines_play_the_plans_verbatim_prompt(catalogue: Catalogue) -> None:
    model = load_config(REPO / "merger_config" / "yuncheng.yaml").model
    verbatim = "您所拨打的电话业务已转移到运城市政务服务热线，请下次直接拨打12345"
    merged = [line for line in model.hotlines if line.mode is Mode.MERGE]
    assert merged
    for line in merged:
        prompt_id = line.prompts.transition or model.defaults.transition_prompt.format(number=line.number)
        assert prompt_text(prompt_id, catalogue, model) == verbatim


def test_repository_configs_have_all_their_prompts(catalogue: Catalogue) -> None:
    for path in sorted((REPO / "merger_config").glob("*.yaml")):
        model = load_config(path).model
        assert prompts_for_config(model, catalogue)


# ---------------------------------------------------------------- config validation


def test_validation_fails_naming_the_line_when_its_prompt_is_missing(tmp_path: Path) -> None:
    path = write_config(tmp_path, transition="no-such-prompt")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    messages = [str(p) for p in err.value.problems]
    assert len(messages) == 1
    line_no = next(i for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "no-such-prompt" in t)
    assert messages[0].startswith(f"{path}:{line_no}:")
    assert "hotlines[3].prompts.transition" in messages[0]
    assert "'no-such-prompt' is not in the catalogue" in messages[0]


def test_cli_validate_reports_the_missing_prompt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, transition="no-such-prompt")
    assert main(["config", "validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert "'no-such-prompt' is not in the catalogue" in captured.out + captured.err


# ---------------------------------------------------------------- list and build


def test_list_prints_ids_and_texts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "list", "--config", str(write_config(tmp_path)), "--only", "transition-*"]) == 0
    out = capsys.readouterr().out
    assert "transition-12300" in out and "您所拨打的电信申诉12300已并入" in out
    assert "welcome" not in out
    assert main(["prompts", "list"]) == 0
    out = capsys.readouterr().out
    assert "menu-main" in out and "transition-<number>" in out


def test_speech_text_reads_hotline_numbers_digit_by_digit() -> None:
    assert speech_text("请拨打12345，按1") == "请拨打幺二三四五，按1"
    assert speech_text("110、120") == "幺幺零、幺二零"


def _build(config: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "prompts",
            "build",
            "--config",
            str(config),
            "--out",
            str(out),
            "--only",
            "custom-hello",
            "--only",
            "*-12300",
            *extra,
        ]
    )


def _counts(text: str) -> tuple[int, int]:
    line = text.strip().splitlines()[-1]
    parts = dict(p.strip().rsplit(" ", 1) for p in line.split(": ", 1)[1].split(",")[:2])
    return int(parts["rendered"]), int(parts["unchanged"])


def test_build_renders_8khz_mono_wavs_and_only_what_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert _build(config, tmp_path / "sounds") == 0
    out = tmp_path / "sounds" / "gx"  # one directory per region id
    assert _counts(capsys.readouterr().out) == (3, 0)
    wavs = sorted(p.name for p in out.glob("*.wav"))
    assert wavs == ["custom-hello.wav", "retired-12300.wav", "transition-12300.wav"]
    for name in wavs:
        with wave.open(str(out / name)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype()) == (8000, 1, 2, "NONE")
            assert w.getnframes() > 8000  # over a second of speech
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["files"]["custom-hello.wav"]["text"] == "您好，这是测试提示。"
    assert manifest["files"]["custom-hello.wav"]["voice"] == "cmn"

    assert _build(config, tmp_path / "sounds") == 0
    assert _counts(capsys.readouterr().out) == (0, 3)

    before = {n: (out / n).stat().st_mtime_ns for n in wavs}
    write_config(tmp_path, hello="您好，这是改过的提示。")
    assert _build(config, tmp_path / "sounds") == 0
    assert _counts(capsys.readouterr().out) == (1, 2)
    assert (out / "transition-12300.wav").stat().st_mtime_ns == before["transition-12300.wav"]
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]["custom-hello.wav"]["text"] == (
        "您好，这是改过的提示。"
    )

    assert _build(config, tmp_path / "sounds", "--force") == 0
    assert _counts(capsys.readouterr().out) == (3, 0)


def test_build_leaves_files_it_did_not_make(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sounds" / "gx"
    out.mkdir(parents=True)
    studio = out / "custom-hello.wav"
    studio.write_bytes(b"studio recording")
    (out / "other.wav").write_bytes(b"unrelated")
    assert _build(write_config(tmp_path), tmp_path / "sounds", "--force") == 0
    text = capsys.readouterr().out
    assert _counts(text) == (2, 0)
    assert "kept 1 not made by this build (custom-hello)" in text
    assert studio.read_bytes() == b"studio recording"
    assert (out / "other.wav").read_bytes() == b"unrelated"


def test_build_says_which_package_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert _build(write_config(tmp_path), tmp_path / "sounds") == 1
    assert "install the Debian package espeak-ng" in capsys.readouterr().err


def test_build_rejects_conflicting_texts_within_one_region(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_config(tmp_path)
    b = tmp_path / "other.yaml"
    b.write_text(a.read_text(encoding="utf-8").replace("您好，这是测试提示。", "别的话"), encoding="utf-8")
    args = ["prompts", "build", "--config", str(a), "--config", str(b), "--out", str(tmp_path / "s")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "prompt 'custom-hello' says '别的话'" in err and "same region 'gx'" in err
    assert not (tmp_path / "s").exists()


def test_build_gives_each_region_its_own_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_config(tmp_path)
    b = tmp_path / "other.yaml"
    text = a.read_text(encoding="utf-8").replace("您好，这是测试提示。", "别的话").replace("id: gx,", "id: yc,")
    b.write_text(text, encoding="utf-8")
    args = ["prompts", "build", "--config", str(a), "--config", str(b), "--out", str(tmp_path / "s")]
    assert main([*args, "--only", "custom-hello"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 's' / 'gx'}: rendered 1" in out and f"{tmp_path / 's' / 'yc'}: rendered 1" in out
    manifests = [json.loads((tmp_path / "s" / r / MANIFEST).read_text(encoding="utf-8")) for r in ("gx", "yc")]
    assert [m["files"]["custom-hello.wav"]["text"] for m in manifests] == ["您好，这是测试提示。", "别的话"]


def test_build_reports_a_bad_config_with_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, transition="no-such-prompt")
    assert main(["prompts", "build", "--config", str(path), "--out", str(tmp_path / "s")]) == 1
    assert f"{path}:" in capsys.readouterr().err


def test_a_failed_render_is_reported_and_not_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "espeak-ng"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$1" in --voices*) printf "Pty Language Age/Gender VoiceName\\n 5  cmn  --/M  x\\n"; exit 0;; esac\n'
        'echo "no audio device" >&2; exit 3\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    out = tmp_path / "sounds" / "gx"
    assert _build(write_config(tmp_path), tmp_path / "sounds") == 1
    captured = capsys.readouterr()
    assert f"error: {out / 'custom-hello.wav'}: espeak-ng failed (3): no audio device" in captured.err
    assert _counts(captured.out) == (0, 0)
    assert not list(out.glob("*.wav"))
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"] == {}
