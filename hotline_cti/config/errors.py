"""Config problems with the place they were found (file:line:column)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    """A position in a YAML file, 1-based as editors show it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a config, said so an engineer can fix it."""

    place: Place | None
    path: str  # e.g. hotlines[3].mode
    message: str

    def __str__(self) -> str:
        where = f"{self.place}: " if self.place else ""
        what = f"{self.path}: " if self.path else ""
        return f"{where}{what}{self.message}"


class ConfigError(Exception):
    """Raised with every problem found in one run, never just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
