"""Recording files on disk: which ones a retention period removes, and which one a stored path may name.

Only files the dialplan names (``[hotline-record]``: ``<YYYYMMDD>/<call id>-<epoch>[-t<code>].<ext>`` under
the recordings directory) are ever touched: a stray file, a symbolic link or anything outside the
directory is left alone and never served, so a path in a database row or a request cannot reach
``/etc/passwd`` by ``..``, a link, or an absolute path elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

DAY_DIR = re.compile(r"^[0-9]{8}$")
FILE_NAME = re.compile(r"^[0-9A-Za-z._]+-[0-9]+(-t[0-9]+)?\.(wav|gsm|WAV)$")
CONTENT_TYPES = {"wav": "audio/wav", "WAV": "audio/wav", "gsm": "audio/x-gsm"}


@dataclass(frozen=True, slots=True)
class OldFile:
    """A recording older than the cut-off."""

    path: Path
    size: int
    mtime: float


def old_recordings(root: Path, before: float) -> list[OldFile]:
    """Recordings under ``root`` last written before ``before`` (seconds since the epoch), oldest first.

    Only ``root/<YYYYMMDD>/<name>`` regular files with a recording's name; links are not followed.
    """
    found: list[OldFile] = []
    try:
        days = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for day in days:
        if not DAY_DIR.match(day.name) or not day.is_dir(follow_symlinks=False):
            continue
        for entry in os.scandir(day.path):
            if not FILE_NAME.match(entry.name):
                continue
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < before:
                found.append(OldFile(Path(entry.path), info.st_size, info.st_mtime))
    found.sort(key=lambda f: (f.mtime, str(f.path)))
    return found


def delete(files: list[OldFile]) -> tuple[int, int, list[str]]:
    """Remove ``files`` and then day directories left empty: (files removed, bytes freed, errors)."""
    removed = freed = 0
    errors: list[str] = []
    for f in files:
        try:
            f.path.unlink()
        except FileNotFoundError:
            continue  # removed meanwhile (a second cleanup): nothing to free
        except OSError as exc:
            errors.append(f"{f.path}: {exc.strerror or exc}")
            continue
        removed += 1
        freed += f.size
    for day in sorted({f.path.parent for f in files}):
        with contextlib.suppress(OSError):
            day.rmdir()  # only when empty
    return removed, freed, errors


class NotServable(Exception):
    """A stored path that must not be served; the message says why (no file content in it)."""


def servable(root: Path, stored: str) -> Path:
    """The file a call record's ``recording_path`` names, if it is a recording under ``root``.

    Raises :class:`NotServable` for anything else: a path outside ``root`` (also through ``..`` or a
    link), a name that is not a recording's, a directory, a missing file.
    """
    root = Path(os.path.normpath(root))
    candidate = Path(stored)
    if not candidate.is_absolute() or ".." in candidate.parts:
        raise NotServable("not an absolute path without '..'")
    if not FILE_NAME.match(candidate.name) or not DAY_DIR.match(candidate.parent.name):
        raise NotServable("not a recording's name")
    try:
        relative = candidate.relative_to(root)
    except ValueError:
        raise NotServable("outside the recordings directory") from None
    if len(relative.parts) != 2:
        raise NotServable("not in a day directory of the recordings directory")
    try:
        info = candidate.lstat()
    except FileNotFoundError:
        raise NotServable("the file is gone (retention cleanup?)") from None
    if not stat.S_ISREG(info.st_mode):
        raise NotServable("not a regular file")
    if Path(os.path.realpath(candidate.parent)) != Path(os.path.realpath(root)) / relative.parts[0]:
        raise NotServable("its directory is a link")
    return candidate


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lstrip("."), "application/octet-stream")
