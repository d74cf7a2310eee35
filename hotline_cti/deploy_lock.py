"""One deploy at a time per Asterisk configuration directory: an advisory lock with its holder named.

The lock is ``flock`` on ``<asterisk dir>/.hotline-deploy.lock``: the kernel drops it when its holder
exits, however it exits, so a lock left by a crashed deploy (the file still there, naming a process that
is gone) is simply taken over, and said so. The file's one line names the holder (pid, user, host, start
time, merger file) for the message of a deploy that finds it held.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import getpass
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

LOCK_NAME = ".hotline-deploy.lock"
POLL_SECONDS = 0.2
HOLDER_LIMIT = 512  # bytes of the holder line shown; the file is ours, but never print a whole odd file


class DeployLocked(RuntimeError):
    """Another deploy holds the lock; the message names it."""


def lock_path(asterisk_dir: Path) -> Path:
    """Where the lock of deploys into ``asterisk_dir`` lives."""
    return asterisk_dir / LOCK_NAME


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, HOLDER_LIMIT).decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else " " for c in text)  # no terminal escapes from a tampered file
    return " ".join(text.split()) or "holder unknown"


def _pid_of(holder: str) -> int | None:
    for word in holder.replace(",", " ").split():
        if word.startswith("pid="):
            with contextlib.suppress(ValueError):
                return int(word[4:])
    return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        return f"uid {os.getuid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open_locked(path: Path, wait: float) -> int:
    """An fd of ``path`` holding its flock; the file is re-checked after locking, since a holder that
    finished may have removed it (then the lock taken was on a file nobody else will see)."""
    deadline = time.monotonic() + wait
    while True:
        # O_NOFOLLOW: a symlink planted at the lock's name is refused, not followed to some other file.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait:g} s" if wait > 0 else ""
                raise DeployLocked(
                    f"another deploy holds {path}{waited} ({holder}); wait for it to finish, "
                    "or retry with --wait SECONDS"
                ) from None
            time.sleep(POLL_SECONDS)
            continue
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # removed or replaced under us: lock the file that is there now


@contextlib.contextmanager
def deploy_lock(asterisk_dir: Path, what: str, out: TextIO, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the deploy lock of ``asterisk_dir`` for the block; :class:`DeployLocked` when another deploy has it.

    ``wait`` seconds are spent retrying before giving up (0: refuse at once). ``what`` (the merger file)
    goes into the holder line. A clean release removes the file, so Asterisk's directory is left as found;
    a file left behind is a crashed deploy's, taken over by the next one.
    """
    asterisk_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(asterisk_dir)
    fd = _open_locked(path, wait)
    try:
        left = _holder(fd)
        pid = _pid_of(left)
        if pid is not None and pid != os.getpid():
            state = "still running, but no longer holding it" if _alive(pid) else "no longer running"
            print(
                f"deploy: taking over the lock {path} left by a deploy that ended without releasing it "
                f"({left}; {state})",
                file=out,
            )
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        line = f"pid={os.getpid()} user={_user()} host={socket.gethostname()} since={started} config={what}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, line.encode("utf-8"), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # still holding the flock: a waiting deploy re-checks and retries
    finally:
        os.close(fd)  # closing drops the flock
