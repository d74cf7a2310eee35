"""reload_bench's replacements: with ``--change route`` each one is a table unlike every earlier one (so each reload
swaps, even when serve folds replacements made while a reload runs); with ``--change comment`` none is."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.national_config import national_yaml
from benchmarks.reload_bench import write_config
from hotline_cti.config.compile import compile_table
from hotline_cti.config.loader import load_config
from hotline_cti.core.table import RoutingTable


def compiled(path: Path, text: str, generation: int, change: str) -> RoutingTable:
    write_config(path, text, generation, change)
    return compile_table(load_config(path).model)


def test_every_route_change_is_a_new_table_and_a_comment_change_none(tmp_path: Path) -> None:
    text = national_yaml(5)
    path = tmp_path / "national.yaml"
    first = compiled(path, text, 0, "comment")
    routes = [compiled(path, text, n, "route") for n in range(1, 6)]
    tables = [first, *routes]
    assert all(a != b for i, a in enumerate(tables) for b in tables[i + 1 :])
    assert compiled(path, text, 7, "comment") == first
    assert not path.with_suffix(".tmp").exists()  # replaced atomically, nothing left beside


def test_a_route_change_needs_the_line_it_moves(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cutover"):
        write_config(tmp_path / "x.yaml", "region: {}\n", 1, "route")
