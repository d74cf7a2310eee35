"""Playing a call's recording on the wallboard: which file a call id names, and whether it may be served.

A request names a *call*, never a file: the path comes from the call's row in the records table and is
served only if it is a recording under the configured recordings directory
(:func:`hotline_cti.storage.recordings.servable`), so no request can reach another file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hotline_cti.config.schema import MergerConfig
from hotline_cti.dialplan.recording import recordings_root
from hotline_cti.storage.recordings import NotServable, servable

CALL_ID = re.compile(r"^[0-9A-Za-z._:-]{1,97}$")  # '<node>:<Uniqueid>' (records.model.call_key) or bare


class RecordingLookup(Protocol):
    """What the wallboard needs from :class:`hotline_cti.storage.store.Store`."""

    async def recording_path(self, call_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RecordingLibrary:
    """The records table and the recordings directory of one merger config."""

    lookup: RecordingLookup
    root: Path
    monitor_dir: str

    @classmethod
    def of(cls, cfg: MergerConfig, lookup: RecordingLookup) -> RecordingLibrary:
        return cls(lookup, Path(recordings_root(cfg)), cfg.recording.monitor_dir)

    async def file_of(self, call_id: str) -> Path:
        """The recording of ``call_id``; :class:`NotServable` (with the reason) when there is none to serve."""
        if not CALL_ID.match(call_id):
            raise NotServable("not a call id")
        stored = await self.lookup.recording_path(call_id)
        if not stored:
            raise NotServable("no recording for this call")
        path = stored if stored.startswith("/") else f"{self.monitor_dir}/{stored}"
        return servable(self.root, path)


__all__ = ["CALL_ID", "NotServable", "RecordingLibrary", "RecordingLookup"]
