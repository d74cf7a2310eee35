"""Load a merger file: read YAML, apply ``extends``, validate, check references.

This is the only place that turns files into a :class:`LoadedConfig`; the
CLI, the FastAGI server's hot reload and the dialplan generator all call
:func:`load_config`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.checks import check_references
from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.schema import MergerConfig
from hotline_cti.config.yamlsource import SourceList, SourceMap, place_of, read_yaml, validation_problems

# A directory besides the config's own that extends may read from (docs/merger-config.md).
ENV_CONFIG_ROOT = "HOTLINE_CONFIG_ROOT"
# Lists merged item by item when a file extends another, and the key of each item.
KEYED_LISTS: dict[str, str] = {
    "cities": "id",
    "centres": "id",
    "queues": "id",
    "expert_groups": "id",
    "subcentres": "id",
    "departments": "id",
    "hotlines": "number",
}
# Mappings merged key by key.
MERGED_MAPS = ("region", "defaults", "overflow", "prompts")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated merger config with the source tree its errors point into."""

    model: MergerConfig
    source: SourceMap
    files: tuple[Path, ...]  # the file and every file it extends, child first


def _item_key(item: Any, key: str) -> str | None:
    if isinstance(item, SourceMap) and key in item:
        return str(item[key])
    return None


def _overlay(parent: SourceMap, child: SourceMap) -> SourceMap:
    """Lay ``child`` over ``parent``: keyed lists merge by key, mappings by key, the rest replaces."""
    out = SourceMap(child.place)
    out.problems = [*parent.problems, *child.problems]
    for src in (parent, child):
        for key in src:
            if key in ("extends", "remove_hotlines") and src is parent:
                continue
            if src is child and key in out and key in KEYED_LISTS:
                out[key] = _merge_list(out[key], src[key], KEYED_LISTS[key])
            elif src is child and key in out and key in MERGED_MAPS and isinstance(out[key], SourceMap):
                merged = SourceMap(src[key].place if isinstance(src[key], SourceMap) else None)
                for part in (out[key], src[key]):
                    if isinstance(part, SourceMap):
                        for k in part:
                            merged[k] = part[k]
                            merged.key_places[k] = part.key_places[k]
                            merged.value_places[k] = part.value_places[k]
                out[key] = merged
            else:
                out[key] = src[key]
            out.key_places[key] = src.key_places[key]
            out.value_places[key] = src.value_places[key]
    return out


def _merge_list(base: Any, extra: Any, key: str) -> Any:
    if not isinstance(base, SourceList) or not isinstance(extra, SourceList):
        return extra
    out = SourceList(extra.place)
    index: dict[str, int] = {}
    for item, place in zip(base, base.item_places, strict=True):
        k = _item_key(item, key)
        if k is not None:
            index[k] = len(out)
        out.append(item)
        out.item_places.append(place)
    for item, place in zip(extra, extra.item_places, strict=True):
        k = _item_key(item, key)
        if k is not None and k in index and isinstance(out[index[k]], SourceMap):
            merged = SourceMap(item.place)
            for part in (out[index[k]], item):
                for f in part:
                    merged[f] = part[f]
                    merged.key_places[f] = part.key_places[f]
                    merged.value_places[f] = part.value_places[f]
            out[index[k]] = merged
            out.item_places[index[k]] = place
        else:
            out.append(item)
            out.item_places.append(place)
    return out


def _remove_hotlines(tree: SourceMap, problems: list[Problem]) -> None:
    removals = tree.pop("remove_hotlines", None)
    if removals is None:
        return
    lines = tree.get("hotlines")
    if not isinstance(removals, SourceList) or not isinstance(lines, SourceList):
        problems.append(Problem(tree.key_places.get("remove_hotlines"), "remove_hotlines", "must be a list of numbers"))
        return
    present = {_item_key(item, "number") for item in lines}
    for number, place in zip(removals, removals.item_places, strict=True):
        if str(number) not in present:
            problems.append(Problem(place, "remove_hotlines", f"{number} is not a line of the extended file"))
    gone = {str(n) for n in removals}
    kept = SourceList(lines.place)
    for item, place in zip(lines, lines.item_places, strict=True):
        if _item_key(item, "number") not in gone:
            kept.append(item)
            kept.item_places.append(place)
    tree["hotlines"] = kept


def allowed_roots(path: Path) -> tuple[Path, ...]:
    """The directories a file's ``extends`` chain may read from: its own, and $HOTLINE_CONFIG_ROOT if set.

    Without this, ``extends: /etc/shadow`` read any file the controller can and the error quoted it.
    """
    roots = [path.resolve().parent]
    extra = os.environ.get(ENV_CONFIG_ROOT, "")
    if extra:
        roots.append(Path(extra).resolve())
    return tuple(roots)


def read_tree(
    path: Path, _seen: tuple[Path, ...] = (), roots: tuple[Path, ...] | None = None
) -> tuple[SourceMap, tuple[Path, ...]]:
    """Read ``path`` and everything it extends into one source tree."""
    roots = roots if roots is not None else allowed_roots(path)
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError([Problem(None, "extends", f"files extend each other in a circle: {chain}")])
    tree = read_yaml(path)
    parent_name = tree.get("extends")
    if parent_name is None:
        problems: list[Problem] = []
        _remove_hotlines(tree, problems)
        if problems:
            raise ConfigError(problems)
        return tree, (path,)
    if not isinstance(parent_name, str):
        raise ConfigError([Problem(tree.value_places["extends"], "extends", "must be a file name")])
    parent_path = (path.parent / parent_name).resolve()  # symlinks resolved: a link out of the tree is out
    if not any(parent_path.is_relative_to(root) for root in roots):
        where = " or ".join(str(r) for r in roots)
        raise ConfigError(
            [
                Problem(
                    tree.value_places["extends"],
                    "extends",
                    f"{parent_name!r} is outside {where}: a merger file extends only files in its own directory "
                    f"tree (set {ENV_CONFIG_ROOT} to allow another); the file was not read",
                )
            ]
        )
    if not parent_path.is_file():
        raise ConfigError([Problem(tree.value_places["extends"], "extends", f"no such file: {parent_path}")])
    parent, files = read_tree(parent_path, (*_seen, path), roots)
    merged = _overlay(parent, tree)
    merged["hotlines"] = merged.get("hotlines", SourceList())
    problems = []
    if "remove_hotlines" in tree:
        merged["remove_hotlines"] = tree["remove_hotlines"]
        merged.key_places["remove_hotlines"] = tree.key_places["remove_hotlines"]
    _remove_hotlines(merged, problems)
    if problems:
        raise ConfigError(problems)
    return merged, (path, *files)


def _duplicate_numbers(tree: SourceMap) -> list[Problem]:
    """Duplicate line numbers found on the raw tree, so they are listed even when the schema fails."""
    lines = tree.get("hotlines")
    if not isinstance(lines, SourceList):
        return []
    seen: dict[str, int] = {}
    out = []
    for i, item in enumerate(lines):
        numbers = [item.get("number")] if isinstance(item, SourceMap) else []
        aliases = item.get("aliases") if isinstance(item, SourceMap) else None
        if isinstance(aliases, SourceList):
            numbers += list(aliases)
        for number in numbers:
            if not isinstance(number, str):
                continue
            if number in seen:
                first = place_of(tree, ("hotlines", seen[number]))
                at = f" (first at line {first.line})" if first else ""
                out.append(Problem(place_of(tree, ("hotlines", i)), f"hotlines[{i}]", f"duplicate number {number}{at}"))
            else:
                seen[number] = i
    return out


def _reference_problems(model: MergerConfig, tree: SourceMap) -> list[Problem]:
    # Every prompt a route names must exist: the catalogue, this file's 'prompts', or a template instance.
    return check_references(model, tree, prompt_ids=known_prompt_ids(load_catalogue(), model))


def _salvage(tree: SourceMap, exc: ValidationError) -> tuple[SourceMap, dict[str, list[int]]] | None:
    """The tree without the list items that failed the schema, so cross-checks can still run.

    Returns None when a problem lies outside a hotline (nothing sound to check).
    The map gives, per list, the original index of each kept item.
    """
    bad: dict[str, set[int]] = {}
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        # Only bad lines are set aside: without a bad queue or city, lines naming it would all be
        # reported as referring to an unknown one.
        # Holiday entries too: nothing refers to them.
        if len(loc) < 2 or loc[0] not in ("hotlines", "holidays") or not isinstance(loc[1], int):
            return None
        bad.setdefault(str(loc[0]), set()).add(loc[1])
    out = SourceMap(tree.place)
    kept: dict[str, list[int]] = {}
    for key, value in tree.items():
        if key in bad and isinstance(value, SourceList):
            items = SourceList(value.place)
            kept[key] = []
            for i, (item, place) in enumerate(zip(value, value.item_places, strict=True)):
                if i not in bad[key]:
                    items.append(item)
                    items.item_places.append(place)
                    kept[key].append(i)
            value = items
        out[key] = value
        out.key_places[key] = tree.key_places[key]
        out.value_places[key] = tree.value_places[key]
    return out, kept


def _renumber(problem: Problem, kept: dict[str, list[int]]) -> Problem:
    """Give a problem found in a salvaged tree the list index of the original file."""
    name, bracket, rest = problem.path.partition("[")
    if not bracket or name not in kept:
        return problem
    index, close, tail = rest.partition("]")
    if not close or not index.isdigit():
        return problem
    return Problem(problem.place, f"{name}[{kept[name][int(index)]}]{tail}", problem.message)


def validate_tree(tree: SourceMap) -> MergerConfig:
    """Validate a source tree; raise :class:`ConfigError` with every problem and its place.

    When some list items fail the schema, the rest are still cross-checked, so one
    run lists the typo in one line and the unknown queue in another.
    """
    read_problems = list(tree.problems)
    try:
        model = MergerConfig.model_validate(tree)
    except ValidationError as exc:
        problems = read_problems + _duplicate_numbers(tree)
        problems += validation_problems(exc, tree, "a typo? see docs/merger-config.md")
        salvaged = _salvage(tree, exc)
        if salvaged is not None:
            partial, kept = salvaged
            try:
                rest = MergerConfig.model_validate(partial)
            except ValidationError:
                rest = None
            if rest is not None:
                # Duplicates were already found on the whole raw tree.
                problems += [
                    _renumber(p, kept)
                    for p in _reference_problems(rest, partial)
                    if not p.message.startswith("duplicate number")
                ]
        raise ConfigError(problems) from None
    problems = read_problems + _reference_problems(model, tree)
    if problems:
        raise ConfigError(problems)
    return model


def load_config(path: str | Path) -> LoadedConfig:
    """Read, merge, validate and cross-check a merger file.

    Raises :class:`ConfigError` listing every problem found, each with
    ``file:line:column``.
    """
    tree, files = read_tree(Path(path))
    return LoadedConfig(validate_tree(tree), tree, files)
