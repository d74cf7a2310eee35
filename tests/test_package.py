"""The built wheel works anywhere: a fresh venv, a plain (non-editable) install, a temp directory.

Builds the wheel with ``pip wheel . --no-deps``, installs it into a new venv (its dependencies come
from PyPI through pip's cache), and runs the engineers' commands from a directory that is not the
checkout, on a copied merger file: nothing may be read from the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import REPO

# The global guard (10 min, pyproject) would cut the wheel build plus the install from PyPI (bounded at 600 s and
# 1,200 s below) before their own timeouts name what hung.
pytestmark = pytest.mark.timeout(2400)

ROOT = REPO
# the top-level files the wheel ships under hotline_cti/data/, byte for byte
SHIPPED = [
    "ivr_prompts/catalogue.yaml",
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "merger_config").rglob("*.yaml"))),
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "simulators" / "scenarios").glob("*.yaml"))),
]
# Every runtime module must import without the simulators (the demo and simulate commands load them when run).
NO_SIMULATORS = """
import importlib, pkgutil, sys
import hotline_cti
from hotline_cti.cli.main import build_parser
build_parser()
for m in pkgutil.walk_packages(hotline_cti.__path__, "hotline_cti."):
    if ".migrations" not in m.name:  # alembic's env.py runs only under alembic
        importlib.import_module(m.name)
print(json.dumps(sorted(n for n in sys.modules if n.split(".")[0] == "simulators")))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-v", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (out / "build.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    (built,) = out.glob("hotline_cti-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """bin/ of a fresh venv with the wheel installed (not editable)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / "bin"
    proc = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    yield bin_dir
    shutil.rmtree(env_dir, ignore_errors=True)


def clean_env() -> dict[str, str]:
    """The environment without what points Python at a checkout: with PYTHONPATH on a checkout that holds an
    egg-info, pip in the new venv finds hotline_cti "already satisfied" there and installs nothing."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HOTLINE_PROMPTS_DIR", "VIRTUAL_ENV")}


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_carries_the_data_and_no_license_warning(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for rel in SHIPPED:
            assert zf.read(f"hotline_cti/data/{rel}") == (ROOT / rel).read_bytes(), rel
        for unit in ("hotline-cti.service", "serve.env", "secrets.env"):  # the PBX host's unit (docs/install.md)
            assert zf.read(f"hotline_cti/systemd/{unit}") == (ROOT / "hotline_cti" / "systemd" / unit).read_bytes()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "hotline_cti/storage/migrations/script.py.mako" in names
    assert "License-Expression: Apache-2.0" in metadata
    log = (wheel.parent / "build.log").read_text(encoding="utf-8")
    assert "running bdist_wheel" in log  # the verbose log is the build's
    assert "project.license" not in log and "License classifiers are deprecated" not in log
    assert "Requires-Dist: phonenumbers" in metadata


def test_a_plain_install_runs_the_commands_from_a_temp_directory(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(ROOT / "merger_config" / "guangxi.yaml", work / "gx.yaml")
    cli = str(installed / "hotline-cti")

    validate = run(installed, work, cli, "config", "validate", "gx.yaml")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert validate.stdout.startswith("ok: gx.yaml")

    route = run(
        installed,
        work,
        cli,
        "route",
        "12313",
        "--config",
        "gx.yaml",
        "--caller",
        "18977312345",
        "--at",
        "2030-01-01T10:00",
        "--json",
    )
    assert route.returncode == 0, route.stderr
    decision = json.loads(route.stdout)
    assert (decision["target"], decision["city"]) == ("tobacco@guilin", "guilin")  # the mobile prefixes load too

    render = run(installed, work, cli, "dialplan", "render", "gx.yaml", "-o", "out")
    assert render.returncode == 0, render.stdout + render.stderr
    assert {"extensions.conf", "queues.conf"} <= {p.name for p in (work / "out").iterdir()}

    edited = (
        (work / "gx.yaml")
        .read_text(encoding="utf-8")
        .replace("mode: merge, cutover: 2021-08-31}", "mode: merge, cutover: 2021-09-30}", 1)
    )
    (work / "new.yaml").write_text(edited, encoding="utf-8")
    deploy = run(
        installed,
        work,
        cli,
        "deploy",
        "new.yaml",
        "--in-service",
        "gx.yaml",
        "--asterisk-dir",
        "out",
        "--dry-run",
        "--at",
        "2021-09-15T10:00",
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "changed: 12300" in deploy.stdout and "dry run: would write" in deploy.stdout
    assert (work / "gx.yaml").read_bytes() == (ROOT / "merger_config" / "guangxi.yaml").read_bytes()

    check = run(installed, work, cli, "demo", "--check-only")  # the packaged example files
    assert check.returncode == 0, check.stdout + check.stderr
    assert "demo: 3 configs" in check.stdout and "0 errors" in check.stdout

    prompts = run(installed, work, cli, "prompts", "list", "--config", "gx.yaml")
    assert prompts.returncode == 0, prompts.stdout + prompts.stderr
    assert "transition-12300" in prompts.stdout

    site = run(installed, work, str(installed / "python"), "-c", "import hotline_cti; print(hotline_cti.__file__)")
    assert str(ROOT) not in site.stdout and "site-packages" in site.stdout


def test_the_runtime_does_not_import_the_simulators(installed: Path, tmp_path: Path) -> None:
    proc = run(installed, tmp_path, str(installed / "python"), "-c", "import json\n" + NO_SIMULATORS)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
