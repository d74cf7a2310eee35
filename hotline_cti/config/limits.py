"""Limits on what a config file may cost to read, so no input can stall a loader.

A merger file is a few hundred KB at most (a national file of 300 cities is under 1 MB). The limits
are far above that and far below what hurts a controller: a file is refused before it is parsed when
it is not a regular file or is larger than :data:`MAX_FILE_BYTES`, and while it is built when its
aliases expand to more than :data:`MAX_ALIAS_VALUES` values (the "billion laughs" YAML bomb).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hotline_cti.config.errors import ConfigError, Place, Problem

MAX_FILE_BYTES = 4 * 1024 * 1024
# Values reached through aliases, counted as often as they are reached. A few anchors for shared
# hours or prompts stay far below; nine nested levels of nine aliases (341 bytes) reach 387 million.
MAX_ALIAS_VALUES = 10_000


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB"


def read_text_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes; :class:`ConfigError` otherwise.

    Opened non-blocking so a FIFO cannot hang the open, and read with a bounded read so /dev/zero or
    a file growing while it is read cannot eat memory.
    """
    file = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError([Problem(None, "", f"{file}: cannot read: {exc.strerror or exc}")]) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError([Problem(None, "", f"{file}: cannot read: it is a directory, not a file")])
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                [Problem(None, "", f"{file}: cannot read: not a regular file (a device, FIFO or socket)")]
            )
        if info.st_size > limit:
            raise ConfigError([Problem(Place(file, 1, 1), "", f"file too large: over {_mib(limit)}")])
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1  # the file object owns it now
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError([Problem(None, "", f"{file}: cannot read: {exc.strerror or exc}")]) from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:  # it grew after fstat
        raise ConfigError([Problem(Place(file, 1, 1), "", f"file too large: over {_mib(limit)}")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([Problem(Place(file, line, 1), "", f"not UTF-8 text ({exc.reason})")]) from None
