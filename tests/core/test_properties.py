"""Properties of the routing core over every configured number, form and time (hypothesis)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Action, Call
from hotline_cti.core.numbers import dialled_forms
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from tests.paths import REPO

ROOT = REPO
CONFIGS = sorted((ROOT / "merger_config").glob("*.yaml"))
# Compiled once: frozen, a table keeps no memo, so no test leaves decisions behind in it.
TABLES = {p.stem: compile_config(load_config(p).model) for p in CONFIGS}

times = st.datetimes(min_value=dt.datetime(2015, 1, 1), max_value=dt.datetime(2030, 12, 31), timezones=st.just(dt.UTC))


def dialled_numbers(table: RoutingTable) -> list[tuple[str, str]]:
    """(canonical number, dialled text) for every line and alias in every form it can be dialled."""
    areas = sorted(set(table.city_by_area) | set(table.shared_areas))
    out = []
    for number in sorted(table.short):
        line = table.short[number]
        out.append((line.number, number))
        for area in areas:
            out += [(line.number, form) for form in dialled_forms(number, area)]
    for (area, number), line in sorted(table.landline.items(), key=lambda kv: kv[0]):
        out += [(line.number, form) for form in dialled_forms(number, area)]
    return out


@pytest.mark.parametrize("name", sorted(TABLES))
@settings(max_examples=300, deadline=None)
@given(data=st.data(), now=times)
def test_every_number_in_every_form_gets_its_lines_decision(name: str, data: st.DataObject, now: dt.datetime) -> None:
    table = TABLES[name]
    number, dialled = data.draw(st.sampled_from(dialled_numbers(table)))
    city = data.draw(st.sampled_from([None, *sorted(table.city_names)]))
    d = decide(Call(dialled, city=city), table, now)
    assert d.number == number
    if d.action not in (Action.GUIDANCE, Action.RETIRED):
        assert d.target, d
    if number in ("110", "119", "120", "122", "12122"):
        assert d.action is Action.EMERGENCY and d.target == number and d.overflow is None and d.centre is None


@pytest.fixture
def warm() -> dict[str, DecisionCache]:
    """Decision caches of one test, warmed across its examples (hypothesis runs them all in one fixture)."""
    return {}


@pytest.mark.parametrize("name", sorted(TABLES))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), now=times)
def test_same_inputs_same_decision_with_or_without_cache(
    name: str, warm: dict[str, DecisionCache], data: st.DataObject, now: dt.datetime
) -> None:
    """A cache already holding other calls' decisions answers as no cache: the table decided afresh."""
    table = TABLES[name]
    cache = warm.setdefault(name, DecisionCache(table))
    numbers = [dialled for _, dialled in dialled_numbers(table)] + ["12345", "99999"]
    callers = [None, "13812345678", "07732801234", "07712801234", "03592801234"]
    cities = [None, *sorted(table.city_names)]
    calls = data.draw(
        st.lists(
            st.builds(
                Call,
                dialled=st.sampled_from(numbers),
                caller=st.sampled_from(callers),
                city=st.sampled_from(cities),
                ivr_choice=st.sampled_from([None, "1", "2", "3", "9"]),
                topic=st.sampled_from([None, *sorted(table.short)]),
            ),
            min_size=1,
            max_size=6,
        )
    )
    for call in calls:
        served = decide(call, table, now, cache)
        assert decide(call, table, now, cache) == served  # the second time from the cache
        assert decide(call, table, now) == served, call  # no cache: decided afresh
        assert decide(call, table, now, DecisionCache(table)) == served, call


@settings(max_examples=500, deadline=None)
@given(dialled=st.text(max_size=30), caller=st.none() | st.text(max_size=20), now=times)
def test_decide_never_raises_and_always_has_a_target(dialled: str, caller: str | None, now: dt.datetime) -> None:
    for shared in TABLES.values():
        d = decide(Call(dialled, caller=caller), shared, now)
        assert d.target is not None or d.action in (Action.GUIDANCE, Action.RETIRED)
        assert d.action is not Action.EMERGENCY or d.overflow is None
