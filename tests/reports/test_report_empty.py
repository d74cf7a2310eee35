"""``hotline-cti report`` never reports 0 calls without a word: a missing database, an empty one, an empty window."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hotline_cti.storage.store import Store
from tests.kpi.test_kpi import sample


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process (it runs its own event loop, the test's loop is busy)."""
    return subprocess.run(
        [sys.executable, "-m", "hotline_cti.cli.main", "report", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_the_readme_example_without_a_database_says_so(tmp_path: Path) -> None:
    done = run_cli("--since", "2026-11-23", "--format", "html", "-o", "report.html", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"hotline-cti report: error: no database at {tmp_path / 'hotline-cti.db'}: "
        "name the one serve writes to with --database or $DATABASE_URL"
    )
    assert not (tmp_path / "hotline-cti.db").exists()  # not created empty on the way
    assert not (tmp_path / "report.html").exists()


async def test_an_empty_database_is_named_as_empty(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    await store.close()
    done = run_cli("--database", f"sqlite:///{tmp_path / 'empty.db'}")
    assert done.returncode == 0
    assert "holds no call records (is it the one serve writes to?)" in done.stderr


async def test_a_window_without_calls_says_what_the_database_holds(sqlite_store: Store, tmp_path: Path) -> None:
    records = sample()
    await sqlite_store.upsert_calls(records)
    done = run_cli("--database", f"sqlite:///{tmp_path / 'hotline.db'}", "--since", "2030-01-01")
    assert done.returncode == 0
    assert f"no calls match; the database holds {len(records)} call records from 2026-11-23 09:00" in done.stderr
    assert "(China time)" in done.stderr


def test_a_file_that_is_no_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not sqlite\n" * 200, encoding="utf-8")
    done = run_cli("--database", f"sqlite:///{tmp_path / 'notes.db'}")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "file is not a database" in done.stderr
    assert "Traceback" not in done.stderr
