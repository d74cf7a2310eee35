"""Every config problem is reported in one run with file:line:column and a plain sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from tests.conftest import SMALL_YAML


def problems_of(tmp_path: Path, text: str, name: str = "cfg.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def with_line(extra: str) -> str:
    return SMALL_YAML + extra


def test_small_config_is_valid(small_config_path: Path) -> None:
    assert len(load_config(small_config_path).model.hotlines) == 10


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = SMALL_YAML.replace("queues:", "queus:\n  - {id: x, name: y}\nqueues:", 1)
    out = problems_of(tmp_path, text)
    assert any(f"cfg.yaml:{line_of(text, 'queus:')}:1: queus: unknown key 'queus'" in p for p in out)


def test_unknown_key_inside_a_hotline(tmp_path: Path) -> None:
    text = with_line(
        "  - {number: 12396, name: 科技, unit: 科技厅, mode: merge, cutover: 2021-08-31, cutovr: 2021-08-31}\n"
    )
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith(f"{tmp_path / 'cfg.yaml'}:{line_of(text, 'cutovr')}:")
    assert "hotlines[10].cutovr: unknown key 'cutovr'" in problem


def test_duplicate_number_and_alias(tmp_path: Path) -> None:
    text = with_line(
        "  - {number: 12300, name: 重复, unit: x, mode: merge, cutover: 2021-08-31}\n"
        "  - {number: 12397, name: 别名, unit: x, mode: merge, cutover: 2021-08-31, aliases: [12358]}\n"
    )
    out = problems_of(tmp_path, text)
    assert len(out) == 2
    assert f":{line_of(text, '重复')}:" in out[0] and "duplicate number 12300" in out[0]
    assert f":{line_of(text, '别名')}:" in out[1] and "duplicate number 12358 (already used by 12315" in out[1]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("queue: nosuch", "unknown queue 'nosuch'"),
        ("expert: nosuch", "unknown expert group 'nosuch'"),
        ("department: nosuch", "unknown department 'nosuch'"),
        ("city: nosuch", "unknown city 'nosuch'"),
        ("prompts: {transition: nosuch}", "prompt 'nosuch' is not in the catalogue"),
    ],
)
def test_unknown_references(tmp_path: Path, field: str, message: str) -> None:
    text = with_line(f"  - {{number: 12396, name: 科技, unit: 科技厅, mode: merge, cutover: 2021-08-31, {field}}}\n")
    (problem,) = problems_of(tmp_path, text)
    assert f"cfg.yaml:{line_of(text, '科技厅')}:" in problem and message in problem


def test_unknown_subcentre(tmp_path: Path) -> None:
    text = with_line("  - {number: 12305, name: 邮政, unit: 邮政局, mode: subcentre, subcentre: post}\n")
    (problem,) = problems_of(tmp_path, text)
    assert f":{line_of(text, '邮政局')}:" in problem and "unknown sub-centre 'post'" in problem


def test_emergency_number_must_be_transfer(tmp_path: Path) -> None:
    text = SMALL_YAML.replace(
        "{number: 119, name: 火警, unit: 消防, mode: transfer}", "{number: 119, name: 火警, unit: 消防, mode: parallel}"
    )
    (problem,) = problems_of(tmp_path, text)
    assert f":{line_of(text, '火警')}:" in problem
    assert "119 is an emergency number and must use mode 'transfer', not 'parallel'" in problem


def test_window_that_ends_before_it_starts(tmp_path: Path) -> None:
    text = with_line(
        "  - number: 12396\n    name: 科技\n    unit: 科技厅\n    mode: merge\n    cutover: 2021-08-31\n"
        "    transition: {start: 2021-09-01, end: 2021-08-01}\n"
    )
    (problem,) = problems_of(tmp_path, text)
    assert (
        f":{line_of(text, 'transition: {start')}:" in problem
        and "ends (2021-08-01) before it starts (2021-09-01)" in problem
    )


def test_per_city_subcentre_missing_a_city(tmp_path: Path) -> None:
    text = SMALL_YAML.replace("      - {city: chongzuo, dial: PJSIP/12313@cz}\n", "")
    (problem,) = problems_of(tmp_path, text)
    assert f":{line_of(text, '{city: nanning')}:" in problem and "has no site for city chongzuo" in problem


def test_number_that_is_not_a_number(tmp_path: Path) -> None:
    text = with_line("  - {number: 12a45, name: 坏号, unit: x, mode: merge, cutover: 2021-08-31}\n")
    (problem,) = problems_of(tmp_path, text)
    assert f":{line_of(text, '坏号')}:" in problem and "'12a45' is not a number" in problem


def test_yaml_syntax_error_names_the_place(tmp_path: Path) -> None:
    text = SMALL_YAML.replace("queues:\n", "queues:\n  - {id: general, name: [\n", 1)
    (problem,) = problems_of(tmp_path, text)
    assert "cfg.yaml:" in problem and "YAML syntax" in problem


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = SMALL_YAML.replace("{id: complaint, name: 投诉举报}", "{id: complaint, name: 投诉举报, name: again}")
    (problem,) = problems_of(tmp_path, text)
    assert f":{line_of(text, 'again')}:" in problem and "duplicate key 'name'" in problem


def test_several_problems_listed_together(tmp_path: Path) -> None:
    text = with_line(
        "  - {number: 12396, name: 科技, unit: 科技厅, mode: merge, cutover: 2021-08-31, queue: nosuch}\n"
        "  - {number: 12397, name: 其他, unit: x, mode: guidance, cutover: 2021-08-31}\n"
        "  - {number: 12300, name: 重复, unit: x, mode: merge, cutover: 2021-08-31}\n"
    )
    out = problems_of(tmp_path, text)
    assert len(out) == 3
    assert sorted(line_of(text, w) for w in ("科技厅", "其他", "重复")) == sorted(int(p.split(":")[1]) for p in out)


def test_unquoted_area_code_keeps_its_leading_zero(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(SMALL_YAML.replace('area_code: "0771"', "area_code: 0771"), encoding="utf-8")
    assert load_config(path).model.cities[0].area_code == "0771"


def test_extends_overlays_a_city_file_and_names_the_right_file(tmp_path: Path) -> None:
    (tmp_path / "province.yaml").write_text(SMALL_YAML, encoding="utf-8")
    city = (
        "extends: province.yaml\n"
        "remove_hotlines: [12339]\n"
        "hotlines:\n"
        "  - {number: 12300, cutover: 2021-10-01}\n"
        "  - {number: 12396, name: 科技, unit: 科技局, mode: merge, cutover: 2021-08-31}\n"
    )
    (tmp_path / "city.yaml").write_text(city, encoding="utf-8")
    model = load_config(tmp_path / "city.yaml").model
    numbers = [line.number for line in model.hotlines]
    assert "12339" not in numbers and numbers[-1] == "12396"
    merged = next(line for line in model.hotlines if line.number == "12300")
    assert str(merged.cutover) == "2021-10-01" and merged.name == "电信申诉"
    bad_city = city.replace("cutover: 2021-10-01", "queue: nosuch")
    (tmp_path / "city.yaml").write_text(bad_city, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "city.yaml")
    (problem,) = info.value.problems
    assert str(problem).startswith(f"{(tmp_path / 'city.yaml').resolve()}:4:")


def test_circular_extends(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="extend each other in a circle"):
        load_config(tmp_path / "a.yaml")


def test_schema_and_reference_problems_in_one_run(tmp_path: Path) -> None:
    text = with_line(
        "  - {number: 12396, name: 科技, unit: 科技厅, mode: merge, cutover: 2021-08-31, typo: 1}\n"
        "  - {number: 12397, name: 其他, unit: x, mode: merge, cutover: 2021-08-31, queue: nosuch}\n"
        "  - {number: 12398, name: 第三, unit: x, mode: merge, cutover: 2021-08-31}\n"
        "  - {number: 12300, name: 重复, unit: x, mode: merge, cutover: 2021-08-31}\n"
    )
    out = problems_of(tmp_path, text)
    assert len(out) == 3
    joined = "\n".join(out)
    assert f":{line_of(text, 'typo')}:" in joined and "hotlines[10].typo: unknown key 'typo'" in joined
    # Found in the salvaged list, reported with the index and line of the original file.
    assert (
        f":{line_of(text, 'nosuch')}:" in joined and "hotlines[11].queue: 12397 其他: unknown queue 'nosuch'" in joined
    )
    assert f":{line_of(text, '重复')}:" in joined and "duplicate number 12300" in joined
