"""``hotline-cti report`` on a real SQLite store: period filter, formats, output file, bad arguments."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.records.callback import CallbackRecord, CallbackStatus
from hotline_cti.records.model import Outcome
from hotline_cti.storage.store import Store
from tests.conftest import SMALL_YAML
from tests.kpi.test_kpi import sample


@pytest.fixture
async def db_url(sqlite_store: Store, tmp_path: Path) -> str:
    """The sample calls stored in the migrated SQLite database; the fixture store stays open (WAL allows readers)."""
    records = sample()
    records[2].region = "yc"  # one call of another region
    await sqlite_store.upsert_calls(records)
    return f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}"


def figures(text: str) -> dict[tuple[str, str, str], str]:
    return {(s, n, m): v for s, n, m, v in list(csv.reader(io.StringIO(text)))[1:]}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process (it runs its own event loop, the test's loop is busy)."""
    return subprocess.run(
        [sys.executable, "-m", "hotline_cti.cli.main", "report", *args], capture_output=True, text=True, check=False
    )


async def test_csv_from_the_store_filtered_by_period_and_region(db_url: str) -> None:
    # calls start 09:00..10:11 China time; until 09:05 keeps calls 0..4 of region gx only (call 2 is yc)
    done = run_cli("--database", db_url, "--format", "csv", "--region", "gx", "--until", "2026-11-23T09:05")
    assert done.returncode == 0, done.stderr
    f = figures(done.stdout)
    assert f[("overview", "来电总量 calls", "value")] == "4"
    assert f[("overview", "接通率 answer rate", "value")] == "0.7500"  # 3 of 4 offered (one 60 s abandon)
    assert f[("satisfaction", "满意", "count")] == "1" and f[("transfers", "110", "transfers")] == "1"


async def test_html_written_to_a_file(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = run_cli("--database", db_url, "--format", "html", "--since", "2026-11-23", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "report written to" in done.stdout
    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and "gx-general" in page


@pytest.mark.parametrize("arg", ["--since", "--until"])
def test_bad_dates_exit_2_naming_the_argument(arg: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["report", arg, "23/11/2026"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {arg}" in err and "23/11/2026" in err


def test_until_before_since_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "2026-11-23", "--until", "2026-11-22"]) == 2
    assert "argument --until" in capsys.readouterr().err


async def test_callbacks_section_and_the_answered_policy(db_url: str, sqlite_store: Store, tmp_path: Path) -> None:
    """A reached callback of the 60 s abandon: its own section always; counted as answered only when the merger
    file given with --config says callback.counts_as_answered."""
    abandoned = next(r for r in sample() if r.outcome is Outcome.ABANDONED and r.wait == 60.0)
    offered = abandoned.started + dt.timedelta(seconds=30)
    await sqlite_store.upsert_callbacks(
        [
            CallbackRecord(
                abandoned.call_id, "gx", "gx-general", "138****5678", "key", CallbackStatus.REACHED, offered,
                accepted=offered, answered=offered + dt.timedelta(minutes=5),
                reached=offered + dt.timedelta(minutes=5), attempts=1,
            )
        ]
    )  # fmt: skip
    args = ("--database", db_url, "--format", "csv", "--region", "gx", "--until", "2026-11-23T09:05")
    plain = run_cli(*args)
    assert plain.returncode == 0, plain.stderr
    f = figures(plain.stdout)
    assert f[("overview", "接通率 answer rate", "value")] == "0.7500"
    assert f[("callbacks", "回呼接通 reached the caller", "value")] == "1"
    assert f[("callbacks", "接受回呼 accepted", "value")] == "1"
    config = tmp_path / "policy.yaml"
    config.write_text(SMALL_YAML + "callback: {counts_as_answered: true}\n", encoding="utf-8")
    counted = run_cli(*args, "--config", str(config))
    assert counted.returncode == 0, counted.stderr
    assert figures(counted.stdout)[("overview", "接通率 answer rate", "value")] == "1.0000"  # 4 of 4
    bad = run_cli(*args, "--config", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 1 and "--config" in bad.stderr


async def test_callbacks_list_prints_open_callbacks_masked(sqlite_store: Store, tmp_path: Path) -> None:
    t0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
    await sqlite_store.upsert_callbacks(
        [
            CallbackRecord("1700.1", "gx", "gx-general", "13812345678", "key", CallbackStatus.RETRY, t0, position=3),
            CallbackRecord("1700.2", "gx", "gx-general", "138****0000", "key", CallbackStatus.REACHED, t0),
            CallbackRecord("1700.3", "gx", "gx-general", "13900001111", "abandoned", CallbackStatus.LISTED, t0),
        ]
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "hotline_cti.cli.main", "callbacks", "list", "--database", url, "--region", "gx"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and "1700.2" not in done.stdout  # header, dashes, the two open ones
    assert "138****5678" in done.stdout and "retry" in lines[2] and "listed" in lines[3]
    assert "13812345678" not in done.stdout and "13900001111" not in done.stdout
