"""YAML reading that remembers where every key and value came from.

Mappings become :class:`SourceMap` and sequences :class:`SourceList`; each
keeps the :class:`Place` of its children, so a pydantic error location
(``("hotlines", 3, "mode")``) can be turned back into ``file:line:column``
even after a city file has been laid over its province's file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hotline_cti.config.errors import ConfigError, Place, Problem
from hotline_cti.config.limits import MAX_ALIAS_VALUES, read_text_bounded

try:  # libyaml is ~10x faster; fall back to pure Python where it is missing
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader


class SourceMap(dict[str, Any]):
    """A dict that knows the place of itself, its keys and its values."""

    place: Place | None
    key_places: dict[str, Place]
    value_places: dict[str, Place]
    problems: list[Problem]  # on a file's root: what reading found (bad values, duplicate keys)

    def __init__(self, place: Place | None = None) -> None:
        super().__init__()
        self.place = place
        self.key_places = {}
        self.value_places = {}
        self.problems = []


class SourceList(list[Any]):
    """A list that knows the place of itself and of each item."""

    place: Place | None
    item_places: list[Place | None]

    def __init__(self, place: Place | None = None) -> None:
        super().__init__()
        self.place = place
        self.item_places = []


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader; plain digit strings stay strings (no octal 0771, no base-60 12:30)."""


# Drop the int and float resolvers: area codes such as 0771 would become octal
# and numbers would lose their leading zeros. pydantic turns "120" into 120
# where a field wants an int.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _place(file: str, node: yaml.Node) -> Place:
    mark = node.start_mark
    return Place(file, mark.line + 1, mark.column + 1)


class _Budget:
    """What building one file may still cost: values reached through aliases, and the nodes being built."""

    def __init__(self, file: str, alias_values: int) -> None:
        self.file = file
        self.left = alias_values
        self.seen: set[int] = set()  # every node built once; a second visit is through an alias
        self.open: set[int] = set()  # the nodes being built, to find an alias inside its own anchor

    def enter(self, node: yaml.Node) -> None:
        key = id(node)
        if key in self.open:
            raise ConfigError([Problem(_place(self.file, node), "", "an alias refers to the node that contains it")])
        if key in self.seen:
            self.left -= 1
            if self.left < 0:
                raise ConfigError(
                    [
                        Problem(
                            _place(self.file, node),
                            "",
                            f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (a YAML alias bomb?): "
                            "this value is reached through them too often; write values out or use fewer aliases",
                        )
                    ]
                )
        self.seen.add(key)


def _build(file: str, node: yaml.Node, loader: _Loader, problems: list[Problem], budget: _Budget) -> Any:
    budget.enter(node)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        budget.open.add(id(node))
        try:
            return _build_collection(file, node, loader, problems, budget)
        finally:
            budget.open.discard(id(node))
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # e.g. 2021-02-30 looks like a date but is none
        problems.append(Problem(_place(file, node), "", f"{node.value!r} is not a valid value: {exc}"))
        return None


def _build_collection(
    file: str, node: yaml.MappingNode | yaml.SequenceNode, loader: _Loader, problems: list[Problem], budget: _Budget
) -> Any:
    if isinstance(node, yaml.SequenceNode):
        seq = SourceList(_place(file, node))
        for item in node.value:
            seq.append(_build(file, item, loader, problems, budget))
            seq.item_places.append(_place(file, item))
        return seq
    out = SourceMap(_place(file, node))
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            # A list or mapping as a key is no merger-file key, and printing one built from aliases
            # would expand them all.
            problems.append(Problem(_place(file, key_node), "", "a key must be a plain value, not a list or mapping"))
            continue
        budget.enter(key_node)
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in out:
            problems.append(
                Problem(
                    _place(file, key_node), key, f"duplicate key {key!r} (first at line {out.key_places[key].line})"
                )
            )
            continue
        out[key] = _build(file, value_node, loader, problems, budget)
        out.key_places[key] = _place(file, key_node)
        out.value_places[key] = _place(file, value_node)
    return out


def read_yaml(path: Path) -> SourceMap:
    """Read one YAML file into a :class:`SourceMap`; raise :class:`ConfigError` on bad YAML.

    Bounded: see :mod:`hotline_cti.config.limits` (size, file type, alias expansion).
    """
    file = str(path)
    text = read_text_bounded(path)
    loader = _Loader(text)
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([Problem(Place(file, 1, 1), "", "the file is empty")])
        data = _build(file, node, loader, problems, _Budget(file, MAX_ALIAS_VALUES))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = Place(file, mark.line + 1, mark.column + 1) if mark else Place(file, 1, 1)
        raise ConfigError([Problem(place, "", f"YAML syntax: {exc.problem or exc}")]) from exc
    except RecursionError:
        # Block nesting the parser allows can still be deeper than building it may recurse.
        raise ConfigError([Problem(Place(file, 1, 1), "", "YAML nested too deeply")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, SourceMap):
        raise ConfigError([*problems, Problem(Place(file, 1, 1), "", "the top level must be a mapping of keys")])
    # Not raised yet: validation goes on so one run lists every problem of the file.
    data.problems = problems
    return data


def place_of(root: Any, loc: tuple[int | str, ...]) -> Place | None:
    """The place of the deepest node along ``loc`` that we know of."""
    node = root
    best: Place | None = getattr(root, "place", None)
    for step in loc:
        if isinstance(node, SourceMap) and isinstance(step, str):
            if step in node.key_places:
                best = node.value_places.get(step, node.key_places[step])
                node = node[step]
                continue
            return best
        if isinstance(node, SourceList) and isinstance(step, int) and 0 <= step < len(node):
            best = node.item_places[step] or best
            node = node[step]
            continue
        return best
    return best


def key_place_of(root: Any, loc: tuple[int | str, ...]) -> Place | None:
    """The place of the key named last in ``loc`` (for unknown-key errors)."""
    if not loc:
        return getattr(root, "place", None)
    parent = root
    for step in loc[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return place_of(root, loc)
    last = loc[-1]
    if isinstance(parent, SourceMap) and isinstance(last, str) and last in parent.key_places:
        return parent.key_places[last]
    return place_of(root, loc)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``("hotlines", 3, "mode")`` as ``hotlines[3].mode``."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def validation_problems(exc: ValidationError, tree: Any, unknown_hint: str) -> list[Problem]:
    """pydantic errors as :class:`Problem` s placed in the YAML ``tree`` they came from.

    ``unknown_hint`` follows the unknown-key message (e.g. where the keys are documented).
    """
    problems = []
    for err in exc.errors(include_url=False):
        # A dict key that fails validation shows up as a "[key]" step; drop pydantic's marker.
        loc = tuple(step for step in err["loc"] if step != "[key]")
        if err["type"] == "extra_forbidden":
            place = key_place_of(tree, loc)
            message = f"unknown key {loc[-1]!r} ({unknown_hint})"
        elif err["type"] == "missing":
            place = place_of(tree, loc[:-1])
            message = f"required key {loc[-1]!r} is missing"
        else:
            place = key_place_of(tree, loc) if "[key]" in err["loc"] else place_of(tree, loc)
            message = err["msg"].removeprefix("Value error, ")
        problems.append(Problem(place, format_loc(loc), message))
    return problems
