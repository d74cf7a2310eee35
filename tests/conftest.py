"""Shared fixtures: a small merger config exercising every mode."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from hotline_cti.adapters.agi import protocol as agi_protocol
from hotline_cti.adapters.agi import scripts as agi_scripts
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core import diversion, memo
from hotline_cti.core.table import RoutingTable

# The mobile prefix cache (hotline_cti/config/mobile.py) of this run, not the user's ~/.cache.
os.environ.setdefault("HOTLINE_CACHE_DIR", tempfile.mkdtemp(prefix="hotline-cti-test-cache-"))

pytest_plugins = ["tests.asterisk_rig", "tests.mqtt_broker", "tests.pg_server", "tests.sqlite_store"]

SMALL_YAML = """\
region: {id: gx, name: 广西, level: province}
cities:
  - {id: nanning, name: 南宁, area_code: "0771"}
  - {id: guilin, name: 桂林, area_code: "0773"}
  - {id: chongzuo, name: 崇左, area_code: "0771"}
centres:
  - {id: gx, name: 自治区12345}
  - {id: guilin, name: 桂林12345, city: guilin}
queues:
  - {id: general, name: 综合}
  - {id: complaint, name: 投诉举报}
  - {id: l12315, name: 市场监管, overflow: general, max_wait: 90}
  - {id: l12348, name: 法律服务}
expert_groups:
  - {id: e12315, name: 市场监管专家}
departments:
  - {id: sft, name: 司法厅12348, dial: PJSIP/12348@sft}
  - {id: water, name: 水务, dial: PJSIP/2587066@water, service_hours: "mon-fri 08:00-18:00"}
subcentres:
  - {id: tax, name: 税务, scope: province, dial: PJSIP/12366@tax}
  - id: tobacco
    name: 烟草
    scope: city
    sites:
      - {city: nanning, dial: PJSIP/12313@nn}
      - {city: guilin, dial: PJSIP/12313@gl}
      - {city: chongzuo, dial: PJSIP/12313@cz}
hotlines:
  - {number: 12300, name: 电信申诉, unit: 通信管理局, mode: merge, cutover: 2021-08-31}
  - {number: 12301, name: 旅游, unit: 文旅厅, mode: merge, cutover: 2021-08-31, after_transition: queue}
  - {number: 12315, name: 市场监管, unit: 市场监管局, mode: parallel, queue: l12315, expert: e12315,
     cutover: 2021-11-30, aliases: [12358]}
  - {number: 12348, name: 法律服务, unit: 司法厅, mode: parallel, seats: department, department: sft,
     queue: l12348, cutover: 2021-11-30}
  - {number: 12366, name: 税务, unit: 税务局, mode: subcentre, subcentre: tax, cutover: 2021-07-31}
  - {number: 12313, name: 烟草, unit: 烟草局, mode: subcentre, subcentre: tobacco, cutover: 2021-07-31}
  - {number: 2587066, name: 供水, unit: 水务, mode: linked, department: water, city: guilin}
  - {number: 12339, name: 国家安全, unit: 国家安全局, mode: guidance, channel: 直接拨打12339}
  - {number: 110, name: 报警, unit: 公安, mode: transfer, transfer_modes: [blind, threeway], handover_to_12345: true}
  - {number: 119, name: 火警, unit: 消防, mode: transfer}
"""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-caches",
        action="store_true",
        help="never store routing decisions, parsed numbers, diverted decisions, AGI scripts or AGI replies, so "
        "every test runs the code behind the caches (scripts/mutation.sh links tests to that code this way)",
    )


# The production bounds, kept for the tests of the caches themselves (fixture caches_on). A cache object
# (DecisionCache, ScriptCache) reads its bound when it is made.
CACHE_LIMITS = {
    (memo, "DECISIONS_LIMIT"): memo.DECISIONS_LIMIT,
    (memo, "PARSED_LIMIT"): memo.PARSED_LIMIT,
    (diversion, "DIVERTED_LIMIT"): diversion.DIVERTED_LIMIT,
    (agi_scripts, "SCRIPTS_LIMIT"): agi_scripts.SCRIPTS_LIMIT,
    (agi_protocol, "_KNOWN_MAX"): agi_protocol._KNOWN_MAX,
}


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--no-caches"):
        # The caches stay in place but never take an entry: a look-up always misses.
        for (module, name), _ in CACHE_LIMITS.items():
            setattr(module, name, 0)
        agi_protocol.KNOWN_REPLIES.clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    # Put the bounds back: mutmut runs many sessions in one process, and each must find them as shipped.
    for (module, name), limit in CACHE_LIMITS.items():
        setattr(module, name, limit)


@pytest.fixture
def caches_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caches as in production, also under --no-caches: for the tests of what the caches return."""
    for (module, name), limit in CACHE_LIMITS.items():
        monkeypatch.setattr(module, name, limit)


@pytest.fixture(scope="session")
def small_config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(SMALL_YAML, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small_table(small_config_path: Path) -> RoutingTable:
    """The small config's routing table, compiled once: frozen, it keeps no memo (a test that wants decisions
    remembered makes its own DecisionCache), so no test can leave state in it for the next."""
    return compile_config(load_config(small_config_path).model)
