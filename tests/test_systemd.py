"""The PBX host's systemd unit: verified by systemd-analyze, and run with its own commands and environment files.

systemd is not PID 1 here, so the unit is not started by systemd: its ExecStartPre and ExecStart run
as systemd would run them (the environment files read, ``$HOTLINE_SERVE_ARGS`` split into words,
``$NOTIFY_SOCKET`` set), with the /etc, /run and /var/lib paths moved into a temp directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.host import free_port
from tests.paths import REPO

ROOT = REPO
UNITS = ROOT / "hotline_cti" / "systemd"
UNIT = UNITS / "hotline-cti.service"
BIN = Path(sys.executable).parent  # the venv's bin/, holding hotline-cti


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` → its values in order (systemd keys may repeat)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {raw!r}"
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments skipped, one level of quotes removed)."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return env


def test_the_unit_is_a_watched_notify_service_with_root_only_secrets() -> None:
    s = unit_settings(UNIT)
    assert s["Service.Type"] == ["notify"] and s["Service.NotifyAccess"] == ["main"]
    assert int(s["Service.WatchdogSec"][0]) >= 5  # the supervisor feeds it every second
    assert s["Service.Restart"] == ["on-failure"]
    assert s["Service.KillMode"] == ["mixed"]  # SIGTERM to the supervisor, which stops and drains its services
    assert s["Service.User"] == ["hotline-cti"]
    assert "/etc/hotline-cti/secrets.env" in s["Service.EnvironmentFile"]
    assert s["Service.StandardError"] == ["journal"]
    (start,) = s["Service.ExecStart"]
    assert start.startswith("/opt/hotline-cti/bin/hotline-cti serve --config /etc/hotline-cti/merger.yaml")
    assert s["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["Install.WantedBy"] == ["multi-user.target"]
    # the shipped secrets template holds no live secret and says how to protect it
    secrets = (UNITS / "secrets.env").read_text(encoding="utf-8")
    assert "0600" in secrets and "root:root" in secrets


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd (scripts/system-deps.sh)"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/hotline-cti/bin/", f"{BIN}/"), encoding="utf-8")
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert UNIT.name not in proc.stdout + proc.stderr  # no warning about it either


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.5)
    yield sock
    sock.close()


def wait_for_message(sock: socket.socket, wanted: str, limit: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            seen += sock.recv(4096).decode().splitlines()
        except TimeoutError:
            continue
        if wanted in seen:
            return seen
    raise AssertionError(f"no {wanted} within {limit} s; got {seen}")


def test_the_unit_runs_with_its_own_commands(tmp_path: Path, notify_socket: socket.socket) -> None:
    etc, run, state = tmp_path / "etc", tmp_path / "run", tmp_path / "state"
    for d in (etc, run, state):
        d.mkdir()
    shutil.copyfile(ROOT / "merger_config" / "guangxi.yaml", etc / "merger.yaml")
    listen, ami = free_port(), free_port()  # the AMI port has no Asterisk: serve keeps retrying, routing serves

    def local(text: str) -> str:
        return (
            text.replace("/opt/hotline-cti/bin/", f"{BIN}/")
            .replace("/etc/hotline-cti/", f"{etc}/")
            .replace("/run/hotline-cti/", f"{run}/")
            .replace("127.0.0.1:4573", f"127.0.0.1:{listen}")
            .replace("127.0.0.1:5038", f"127.0.0.1:{ami}")
        )

    for name in ("serve.env", "secrets.env"):
        (etc / name).write_text(local((UNITS / name).read_text(encoding="utf-8")), encoding="utf-8")
    settings = unit_settings(UNIT)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    for file in settings["Service.EnvironmentFile"]:
        env |= environment_file(Path(local(file)))
    env["NOTIFY_SOCKET"] = str(tmp_path / "notify")

    def command(line: str) -> list[str]:
        words: list[str] = []
        for word in shlex.split(local(line)):
            words += env[word[1:]].split() if word.startswith("$") else [word]  # systemd: unquoted $VAR splits
        return words

    (pre,) = settings["Service.ExecStartPre"]
    check = subprocess.run(command(pre), cwd=state, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr

    (start,) = settings["Service.ExecStart"]
    proc = subprocess.Popen(
        command(start), cwd=state, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        seen = wait_for_message(notify_socket, "READY=1", 90)
        seen += wait_for_message(notify_socket, "WATCHDOG=1", 10)
        with socket.create_connection(("127.0.0.1", listen), timeout=5):
            pass  # FastAGI is listening where serve.env says
        assert (run / "status.json").is_file()
        os.kill(proc.pid, signal.SIGHUP)  # ExecReload
        wait_for_message(notify_socket, "WATCHDOG=1", 10)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)  # what systemctl stop sends (KillMode=mixed: the main process)
        stop = int(settings["Service.TimeoutStopSec"][0])
        assert proc.wait(timeout=stop) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
    assert (state / "hotline-cti.db").exists()  # the default database lands in WorkingDirectory=/var/lib/hotline-cti
