"""The config a controller serves, swapped between sessions when a valid new file arrives."""

from __future__ import annotations

import logging
from pathlib import Path

from hotline_cti.config.compile import compile_table
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.core.table import RoutingTable

log = logging.getLogger(__name__)


class ConfigHolder:
    """Holds the compiled routing table; a session takes ``table`` once and keeps it to the end."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        loaded = load_config(self.path)  # a bad first file is fatal
        self.table: RoutingTable = compile_table(loaded.model)
        self._files: tuple[Path, ...] = loaded.files  # the file and every file it extends
        self._mtimes = self._stat()

    def _stat(self) -> tuple[float, ...]:
        out = []
        for file in (self.path, *self._files):
            try:
                out.append(file.stat().st_mtime)
            except OSError:
                out.append(-1.0)
        return tuple(out)

    def reload(self) -> bool:
        """Load the file again; on any problem keep the old table and log every problem."""
        self._mtimes = self._stat()
        try:
            loaded = load_config(self.path)
            table = compile_table(loaded.model)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload refused, still serving the previous one: %s", problem)
            return False
        self.table, self._files = table, loaded.files
        self._mtimes = self._stat()
        log.info("config reloaded from %s", self.path)
        return True

    def reload_if_changed(self) -> bool | None:
        """Reload when the file's mtime changed; None when it did not."""
        if self._stat() == self._mtimes:
            return None
        return self.reload()
