"""A mobile caller's city, from libphonenumber's prefixes compiled into the routing table at load time."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import geocoder

from hotline_cti.config import mobile
from hotline_cti.config.compile import compile_config, compile_table
from hotline_cti.config.loader import load_config
from hotline_cti.config.mobile import expand_prefixes, match_city, mobile_city_prefixes, mobile_descriptions
from hotline_cti.config.schema import Level
from hotline_cti.core.model import Action, Call
from hotline_cti.core.numbers import mobile_digits
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from tests.paths import REPO

ROOT = REPO
GUANGXI = ROOT / "merger_config" / "guangxi.yaml"
AT = dt.datetime(2030, 1, 1, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
GUILIN_MOBILE = "18977312345"  # 广西桂林市
NANNING_MOBILE = "13877112345"  # 广西南宁市
JIANGSU_MOBILE = "13812345678"  # 江苏省连云港市: outside every shipped region


@pytest.fixture(scope="module")
def guangxi() -> RoutingTable:
    return compile_table(load_config(GUANGXI).model)


def test_the_data_says_what_the_issue_says() -> None:
    for number, city in ((GUILIN_MOBILE, "广西桂林市"), (NANNING_MOBILE, "广西南宁市")):
        assert geocoder.description_for_number(phonenumbers.parse("+86" + number), "zh") == city


def test_a_guilin_mobile_calling_12313_reaches_guilins_sub_centre(guangxi: RoutingTable) -> None:
    d = decide(Call("12313", caller=GUILIN_MOBILE), guangxi, AT)
    assert (d.action, d.target, d.city, d.centre) == (Action.SUBCENTRE, "tobacco@guilin", "guilin", "guilin")
    assert d.reason.endswith("caller's city 桂林市 from the caller's mobile number")


@pytest.mark.parametrize(
    "caller", [NANNING_MOBILE, "+86" + NANNING_MOBILE, "86" + NANNING_MOBILE, "0" + NANNING_MOBILE]
)
def test_a_nanning_mobile_reaches_nannings_site_in_any_caller_id_form(guangxi: RoutingTable, caller: str) -> None:
    d = decide(Call("12313", caller=caller), guangxi, AT)
    assert (d.target, d.city) == ("tobacco@nanning", "nanning")


def test_an_out_of_region_mobile_keeps_the_regions_default(guangxi: RoutingTable) -> None:
    d = decide(Call("12313", caller=JIANGSU_MOBILE), guangxi, AT)
    assert (d.action, d.target, d.city, d.centre) == (Action.QUEUE, "gx-general", None, "gx")
    assert "city is unknown" in d.reason


@pytest.mark.parametrize("caller", [None, "", "5551234", "anonymous"])
def test_no_caller_or_one_that_is_no_mobile_names_no_city(guangxi: RoutingTable, caller: str | None) -> None:
    """The mobile prefixes are consulted only for a caller number that is a mobile; no number, a local number or a
    withheld one keeps the region's default without an error."""
    d = decide(Call("12313", caller=caller), guangxi, AT)
    assert (d.action, d.target, d.city, d.centre) == (Action.QUEUE, "gx-general", None, "gx")


def test_the_trunk_wins_over_the_mobile(guangxi: RoutingTable) -> None:
    d = decide(Call("12313", caller=GUILIN_MOBILE, city="nanning"), guangxi, AT)
    assert (d.target, d.city) == ("tobacco@nanning", "nanning")
    assert d.reason.endswith("caller's city 南宁市 from the trunk")


def test_the_dialled_area_code_wins_over_the_mobile(guangxi: RoutingTable) -> None:
    d = decide(Call("0773-12313", caller=NANNING_MOBILE), guangxi, AT)
    assert (d.target, d.city) == ("tobacco@guilin", "guilin")
    assert d.reason.endswith("caller's city 桂林市 from the dialled area code 0773")


def test_the_callers_landline_still_names_its_city(guangxi: RoutingTable) -> None:
    d = decide(Call("12313", caller="0773-2822222"), guangxi, AT)
    assert (d.target, d.city) == ("tobacco@guilin", "guilin")
    assert d.reason.endswith("from the caller's area code 0773")


def test_a_mobile_settles_a_shared_dialled_area_code_only_among_its_cities(guangxi: RoutingTable) -> None:
    # 0771 is 南宁 and 崇左's: a 南宁 mobile settles it, a 桂林 mobile does not override what was dialled
    d = decide(Call("0771-12313", caller=NANNING_MOBILE), guangxi, AT)
    assert (d.target, d.city, d.warnings) == ("tobacco@nanning", "nanning", ())
    d = decide(Call("0771-12313", caller=GUILIN_MOBILE), guangxi, AT)
    assert (d.target, d.city) == ("gx-general", None)
    assert "0771 is shared by" in d.warnings[0]


def test_12345_from_a_guilin_mobile_is_answered_by_guilins_centre(guangxi: RoutingTable) -> None:
    d = decide(Call("12345", caller=GUILIN_MOBILE), guangxi, AT)
    assert (d.centre, d.target, d.city) == ("guilin", "guilin-general", "guilin")


def test_without_the_compiled_prefixes_a_mobile_names_no_city() -> None:
    table = compile_config(load_config(GUANGXI).model)  # the pure core, given no mobile data
    assert table.mobile_city == {}
    assert decide(Call("12313", caller=GUILIN_MOBILE), table, AT).city is None


def test_every_city_of_every_shipped_region_has_prefixes_and_only_its_own() -> None:
    for path in sorted((ROOT / "merger_config").glob("*.yaml")):
        cfg = load_config(path).model
        prefixes = mobile_city_prefixes(cfg)
        assert set(prefixes.values()) == {c.id for c in cfg.cities}, path.name
        assert all(len(p) == 7 and p[0] == "1" for p in prefixes), path.name
        assert mobile_city_prefixes(cfg) is prefixes  # memoised: a reload of the same cities is free


def test_the_compiled_map_agrees_with_the_geocoder(guangxi: RoutingTable) -> None:
    cfg = load_config(GUANGXI).model
    names = {c.id: c.name for c in cfg.cities}
    rng = random.Random(12345)
    for prefix in rng.sample(sorted(guangxi.mobile_city), 300):
        for tail in ("0000", "9999"):
            text = geocoder.description_for_number(phonenumbers.parse(f"+86{prefix}{tail}"), "zh")
            assert text == "广西" + names[guangxi.mobile_city[prefix]], (prefix, text)
    # and every Guangxi mobile the geocoder places in a city is in the map, with that city
    by_name = {name: city for city, name in names.items()}
    found = 0
    for _ in range(20000):
        number = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
        text = geocoder.description_for_number(phonenumbers.parse("+86" + number), "zh")
        if text.startswith("广西"):
            found += 1
            assert guangxi.mobile_city.get(number[:7]) == by_name[text.removeprefix("广西")], (number, text)
    assert found > 100


def test_descriptions_cover_chinas_mobiles_only() -> None:
    data = mobile_descriptions()
    assert len(data) > 100_000
    assert all(p[0] == "1" and p[1] in "3456789" and 3 <= len(p) <= 7 for p in data)
    assert data["189773"] == "广西桂林市"  # 6 digits: the whole 189773x block


@pytest.mark.parametrize(
    ("description", "region", "level", "expected"),
    [
        ("广西桂林市", "广西壮族自治区", Level.PROVINCE, "guilin"),
        ("广西南宁市", "广西壮族自治区", Level.PROVINCE, "nanning"),
        ("湖南省永州市", "永州市", Level.CITY, "yongzhou"),
        ("广西桂林市", "湖南省", Level.PROVINCE, None),  # the right name in another province
        ("广西贵港市", "广西壮族自治区", Level.PROVINCE, None),  # not a city of the config
        ("湖北省襄樊市", "湖北省", Level.PROVINCE, "xiangyang"),  # renamed 襄阳 in 2010
        ("贵州省毕节地区", "贵州省", Level.PROVINCE, "bijie"),  # now 毕节市
    ],
)
def test_match_city(description: str, region: str, level: Level, expected: str | None) -> None:
    cities = [
        ("guilin", "桂林市"),
        ("nanning", "南宁"),
        ("yongzhou", "永州市"),
        ("xiangyang", "襄阳市"),
        ("bijie", "毕节市"),
        ("ning", "宁市"),  # a suffix of 南宁市, never matched for it
    ]
    assert match_city(description, cities, region, level) == expected


def test_the_longest_prefix_wins_when_expanded() -> None:
    out = expand_prefixes({"189770": "fangchenggang", "1897707": None, "1897708": "nanning", "13": None})
    assert len(out) == 9
    assert "1897707" not in out and out["1897708"] == "nanning" and out["1897700"] == "fangchenggang"


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("13877112345", "13877112345"),
        ("+8613877112345", "13877112345"),
        ("+86 138 7711 2345", "13877112345"),
        ("008613877112345", "13877112345"),
        ("8613877112345", "13877112345"),
        ("013877112345", "13877112345"),
        ("07732822222", None),
        ("12345", None),
        ("unknown", None),
        ("１３８７７１１２３４５", None),
    ],
)
def test_mobile_digits(raw: str, digits: str | None) -> None:
    assert mobile_digits(raw) == digits


def test_the_core_imports_no_phonenumbers() -> None:
    code = "import sys, hotline_cti.core.routing, hotline_cti.core.table; print('phonenumbers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_map_is_cached_on_disk_for_processes_that_load_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(mobile.ENV_CACHE_DIR, str(tmp_path))
    cfg = load_config(GUANGXI).model
    mobile._prefixes_for.cache_clear()
    built = dict(mobile_city_prefixes(cfg))
    (cached,) = tmp_path.glob("mobile-*.json")

    def no_geodata() -> dict[str, str]:
        raise AssertionError("the geodata was read although the cache holds the map")

    monkeypatch.setattr(mobile, "mobile_descriptions", no_geodata)
    mobile._prefixes_for.cache_clear()
    assert mobile_city_prefixes(cfg) == built  # a new process: read from the file
    cached.write_text('{"1897731": "atlantis"}', encoding="utf-8")  # damaged: a city the config lacks
    monkeypatch.undo()
    monkeypatch.setenv(mobile.ENV_CACHE_DIR, str(tmp_path))
    mobile._prefixes_for.cache_clear()
    assert mobile_city_prefixes(cfg) == built  # rebuilt from the data, and the file rewritten
    assert mobile._read_cache(cached, {c.id for c in cfg.cities}) == built
    mobile._prefixes_for.cache_clear()
