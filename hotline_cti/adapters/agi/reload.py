"""The config a controller serves, swapped between sessions when a valid new file arrives."""

from __future__ import annotations

import logging
from pathlib import Path

from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.core.table import RoutingTable, compile_config

log = logging.getLogger(__name__)


class ConfigHolder:
    """Holds the compiled routing table; a session takes ``table`` once and keeps it to the end."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.table: RoutingTable = compile_config(load_config(self.path).model)  # a bad first file is fatal
        self._mtimes = self._stat()

    def _stat(self) -> tuple[float, ...]:
        # The file and every file it extends would do; the main file is what engineers edit.
        try:
            return (self.path.stat().st_mtime,)
        except OSError:
            return ()

    def reload(self) -> bool:
        """Load the file again; on any problem keep the old table and log every problem."""
        self._mtimes = self._stat()
        try:
            table = compile_config(load_config(self.path).model)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload refused, still serving the previous one: %s", problem)
            return False
        self.table = table
        log.info("config reloaded from %s", self.path)
        return True

    def reload_if_changed(self) -> bool | None:
        """Reload when the file's mtime changed; None when it did not."""
        if self._stat() == self._mtimes:
            return None
        return self.reload()
