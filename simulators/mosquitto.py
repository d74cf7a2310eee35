"""A real mosquitto broker on a free 127.0.0.1 port, restartable on the same port (tests and benchmarks).

``running_broker()`` installs Debian's ``mosquitto`` with apt-get when
``/usr/sbin/mosquitto`` is missing (unless ``install=False``), starts it in
its own temp dir, and stops and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from simulators.host import free_port, install_debian_packages

MOSQUITTO = "/usr/sbin/mosquitto"


def _ensure_installed() -> None:
    if not Path(MOSQUITTO).exists():
        install_debian_packages("mosquitto")


class Broker:
    """One mosquitto process; ``restart()`` keeps the port (and drops every client)."""

    def __init__(
        self, workdir: Path, users: dict[str, str] | None = None, extra: str = "", acl: str | None = None
    ) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} {self.host}\n"
            + self._auth(users or {})
            + self._acl(acl)
            # Persistence lets a subscriber's queued QoS 1 messages survive a restart, as in production.
            + "persistence true\n"
            f"persistence_location {workdir}/\n"
            "autosave_interval 1\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n" + extra,
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def _auth(self, users: dict[str, str]) -> str:
        if not users:
            return "allow_anonymous true\n"
        passwords = self.workdir / "passwd"
        passwords.touch()
        for user, password in users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True, capture_output=True)
        passwords.chmod(0o644)  # read by mosquitto's own user
        return f"allow_anonymous false\npassword_file {passwords}\n"

    def _acl(self, acl: str | None) -> str:
        if acl is None:
            return ""
        path = self.workdir / "acl"
        path.write_text(acl, encoding="utf-8")
        path.chmod(0o644)  # read by mosquitto's own user
        return f"acl_file {path}\n"

    def start(self) -> None:
        """Start and wait until the port accepts connections."""
        # Logs to stderr, kept in a file here: started as root, mosquitto drops to its own user.
        os.chmod(self.workdir, 0o777)  # a private temp dir; mosquitto (its own user) writes its database here
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], cwd=self.workdir, stderr=log)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self._log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self._log_text()}")

    def stop(self) -> None:
        """Terminate (kill after 5 s) and wait."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def _log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def running_broker(
    users: dict[str, str] | None = None, *, install: bool = True, extra: str = "", acl: str | None = None
) -> Iterator[Broker]:
    """Start a broker (password login when ``users`` is given, else anonymous); stop and remove it after.

    With ``install`` (the default) Debian's package is installed first when the binary is missing. ``extra``:
    more mosquitto.conf lines. ``acl``: the text of an ``acl_file`` (users' topic rights).
    """
    if install:
        _ensure_installed()
    # Not under tmp_path: pytest's 0700 parents would keep mosquitto (its own user) from saving its database.
    workdir = Path(tempfile.mkdtemp(prefix="hotline-mosquitto-"))
    try:
        broker = Broker(workdir, users, extra, acl)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
