"""Dialled-number normalisation: every accepted form, its area code and local part, and the refusals."""

from __future__ import annotations

import pytest

from hotline_cti.core.numbers import (
    DialledNumber,
    NumberError,
    NumberForm,
    area_code_length,
    dialled_forms,
    is_short_code,
    line_label,
    parse_dialled,
)


@pytest.mark.parametrize(
    ("raw", "form", "area", "local"),
    [
        ("12345", NumberForm.LOCAL, None, "12345"),
        ("123-45", NumberForm.LOCAL, None, "12345"),
        ("(12345)", NumberForm.LOCAL, None, "12345"),
        ("077112345", NumberForm.NATIONAL, "0771", "12345"),
        ("0771-12345", NumberForm.NATIONAL, "0771", "12345"),
        ("(0771) 123\t45", NumberForm.NATIONAL, "0771", "12345"),
        ("01012345678", NumberForm.NATIONAL, "010", "12345678"),
        ("02012345", NumberForm.NATIONAL, "020", "12345"),
        ("03592666110", NumberForm.NATIONAL, "0359", "2666110"),
        ("01234", NumberForm.NATIONAL, "012", "34"),
        ("+8677112345", NumberForm.INTERNATIONAL, "0771", "12345"),
        ("+86 771 12345", NumberForm.INTERNATIONAL, "0771", "12345"),
        ("+86 0771 12345", NumberForm.INTERNATIONAL, "0771", "12345"),
        ("008677112345", NumberForm.INTERNATIONAL, "0771", "12345"),
        ("0086 10 12345678", NumberForm.INTERNATIONAL, "010", "12345678"),
        ("+86-21-12345", NumberForm.INTERNATIONAL, "021", "12345"),
    ],
)
def test_accepted_forms(raw: str, form: NumberForm, area: str | None, local: str) -> None:
    assert parse_dialled(raw) == DialledNumber(raw, form, area, local)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "'' is not a telephone number"),
        ("12a45", "'12a45' is not a telephone number"),
        ("+86", "'+86' is not a telephone number"),
        ("0086", "'0086' is not a telephone number"),
        ("+1 555 0100", "'+1 555 0100' is not a telephone number"),
        ("１２３４５", "'１２３４５' is not a telephone number"),
        ("０７７１１２３４５", "'０７７１１２３４５' is not a telephone number"),
        ("12.345", "'12.345' is not a telephone number"),
        ("0", "'0' is too short for a national number"),
        ("0771", "'0771' is too short for a national number"),
        ("+86 771", "'+86 771' is too short for a national number"),
    ],
)
def test_refusals(raw: str, message: str) -> None:
    with pytest.raises(NumberError) as info:
        parse_dialled(raw)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("national", "length"), [("01012345678", 3), ("021", 3), ("02912345", 3), ("0771", 4), ("0311", 4), ("0", 4)]
)
def test_area_code_length(national: str, length: int) -> None:
    assert area_code_length(national) == length


@pytest.mark.parametrize(("number", "short"), [("110", True), ("12345", True), ("123456", True), ("2587066", False)])
def test_short_codes(number: str, short: bool) -> None:
    assert is_short_code(number) is short


def test_dialled_forms_all_parse_back() -> None:
    forms = dialled_forms("12345", "0771")
    assert forms == ["12345", "077112345", "+8677112345", "008677112345"]
    assert {(parse_dialled(f).local, parse_dialled(f).area_code) for f in forms[1:]} == {("12345", "0771")}


@pytest.mark.parametrize(
    ("number", "name", "label"),
    [
        ("12315", "12315市场监管投诉举报热线", "12315市场监管投诉举报热线"),
        ("12316", "全国农业系统公益服务电话", "12316 全国农业系统公益服务电话"),
        ("12367", "国家移民管理局12367咨询服务热线", "国家移民管理局12367咨询服务热线"),
        ("2666110", "", "2666110"),
    ],
)
def test_line_label_names_the_number_once(number: str, name: str, label: str) -> None:
    assert line_label(number, name) == label
