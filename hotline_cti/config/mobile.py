"""Mobile number prefixes → the region's city ids, from libphonenumber's geocoding data.

A mobile caller's number names no area code, but its first seven digits (号段 + HLR code) are
assigned to one city: Google's libphonenumber, shipped by the ``phonenumbers`` package, describes
``+86 189 773x`` as 广西桂林市. This module reads that data for country 86 once per config load,
matches the Chinese descriptions against the config's city names and hands the routing table a
plain ``{first seven digits: city id}`` dict (the core then does one dict look-up per call and
imports nothing from here).

The geodata package's ``__init__`` imports every country (≈ 40 MB of generated modules); only
the chunk modules holding ``86…`` keys are read here, straight from their files, and dropped
once the region's map is built. The result is memoised per (region, cities), so a hot reload of
an unchanged city list costs nothing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from hotline_cti.config.schema import Level, MergerConfig
from hotline_cti.core.table import MOBILE_PREFIX_DIGITS

log = logging.getLogger(__name__)

COUNTRY = "86"
_MOBILE_HEAD = re.compile(r"1[3-9]")
# How libphonenumber writes a province in front of the city: 广西…, 湖南省…, 内蒙古…
_AUTONOMOUS = ("广西", "内蒙古", "宁夏", "新疆", "西藏")
# Cities renamed since the data was written: old name → the name a config uses today.
_RENAMED = {"襄樊": "襄阳"}
_FIRST_KEY = re.compile(r"^\s*'(\d+)'\s*:", re.MULTILINE)
ENV_CACHE_DIR = "HOTLINE_CACHE_DIR"


def _city_key(name: str) -> str:
    """A city's name without the suffixes the data and configs disagree on (桂林市 ≡ 桂林, 毕节地区 ≡ 毕节市)."""
    for suffix in ("市", "地区"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            name = name[: -len(suffix)]
            break
    for old, new in _RENAMED.items():
        if name.endswith(old):
            return name[: -len(old)] + new
    return name


def _province_ok(province: str, region_name: str, level: Level) -> bool:
    """``province`` is what precedes the city in the description: it must be a province, and the region's."""
    if not province:
        return True  # 北京市, 重庆市: the municipality is the description
    if not (province.endswith("省") or province in _AUTONOMOUS):
        return False  # a suffix of another city's name (广西南|宁市), not a province
    if level is Level.PROVINCE:
        return region_name.startswith(province.removesuffix("省"))
    return True  # a city-level region does not name its province; its city names are unique in China


def match_city(description: str, cities: Iterable[tuple[str, str]], region_name: str, level: Level) -> str | None:
    """The id of the city ``description`` (e.g. 广西桂林市) names among ``cities`` (id, name), or None."""
    desc = _city_key(description)
    best: tuple[int, str] | None = None
    for city_id, name in cities:
        key = _city_key(name)
        if len(key) < 2 or not desc.endswith(key):
            continue
        if _province_ok(desc[: -len(key)], region_name, level) and (best is None or len(key) > best[0]):
            best = (len(key), city_id)
    return best[1] if best else None


def _load_chunk(name: str, path: Any) -> dict[str, dict[str, str]]:
    """One generated ``geodata/dataN.py`` module's ``data`` dict, without importing the geodata package."""
    spec = importlib.util.spec_from_file_location(f"_hotline_cti_geodata_{name}", str(path))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "phonenumbers.geodata"  # its `from ..util import u` resolves to phonenumbers.util
    spec.loader.exec_module(module)
    return cast(dict[str, dict[str, str]], module.data)


def _chunk_files() -> list[tuple[str, str, Any]]:
    """(first key, module name, path) of every geodata chunk, ordered by first key."""
    root = importlib.resources.files("phonenumbers") / "geodata"
    out: list[tuple[str, str, Any]] = []
    for entry in root.iterdir():
        name = entry.name
        if not (name.startswith("data") and name.endswith(".py")):
            continue
        with entry.open("r", encoding="utf-8") as fh:
            head = fh.read(8192)
        first = _FIRST_KEY.search(head)
        if first is not None:
            out.append((first.group(1), name.removesuffix(".py"), entry))
    return sorted(out)


def _country_chunks(prefix: str) -> Iterator[dict[str, dict[str, str]]]:
    """The data dicts that may hold keys starting with ``prefix``.

    The generated chunks are consecutive runs of the sorted keys: a chunk may hold ``prefix``
    keys only if its first key is below the next prefix and the next chunk's first key above
    ``prefix``. Each loaded chunk is checked against that layout; if the package ever lays its
    data out otherwise, every chunk is read instead.
    """
    chunks = _chunk_files()
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    picked = []
    for i, (first, name, path) in enumerate(chunks):
        end = chunks[i + 1][0] if i + 1 < len(chunks) else None
        if first < upper and (end is None or end > prefix):
            picked.append((first, end, name, path))
    if not picked:
        log.warning("phonenumbers: no geodata chunk for +%s; reading every chunk", prefix)
        picked = [(c[0], None, c[1], c[2]) for c in chunks]
    for first, end, name, path in picked:
        data = _load_chunk(name, path)
        if data and (min(data) < first or (end is not None and max(data) >= end)):
            log.warning("phonenumbers: geodata chunks are not sorted runs; reading every chunk")
            yield data
            for _, other, other_path in chunks:
                if other != name:
                    yield _load_chunk(other, other_path)
            return
        yield data


def mobile_descriptions() -> dict[str, str]:
    """Every Chinese mobile prefix (national digits, 3–7 long) → its zh description (广西桂林市)."""
    out: dict[str, str] = {}
    for data in _country_chunks(COUNTRY + "1"):
        for key, names in data.items():
            if key.startswith(COUNTRY) and _MOBILE_HEAD.match(key, len(COUNTRY)):
                zh = names.get("zh")
                if zh:
                    out[key[len(COUNTRY) :]] = zh
    return out


def expand_prefixes(prefix_city: Mapping[str, str | None], digits: int = MOBILE_PREFIX_DIGITS) -> dict[str, str]:
    """Variable-length prefixes → fixed ``digits``-long keys, the longest prefix winning.

    A prefix mapped to None belongs to no city of the region; it only matters where it is more
    specific than one that does (``189770`` → 防城港 but ``1897707`` → 南宁 elsewhere).
    """
    out: dict[str, str] = {}
    claimed = {p for p, city in prefix_city.items() if city is not None}
    for prefix in sorted(prefix_city, key=len):
        if len(prefix) > digits:
            continue
        city = prefix_city[prefix]
        if city is None and not any(prefix[:n] in claimed for n in range(1, len(prefix))):
            continue
        width = digits - len(prefix)
        for n in range(10**width):
            key = prefix + (f"{n:0{width}d}" if width else "")
            if city is None:
                out.pop(key, None)
            else:
                out[key] = city
    return out


def cache_dir() -> Path:
    """$HOTLINE_CACHE_DIR, else $XDG_CACHE_HOME/hotline-cti, else ~/.cache/hotline-cti."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hotline-cti"


def _cache_file(region_name: str, level: Level, cities: tuple[tuple[str, str], ...]) -> Path:
    try:
        version = importlib.metadata.version("phonenumbers")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    key = json.dumps([version, region_name, str(level), cities], ensure_ascii=False)
    return cache_dir() / f"mobile-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _read_cache(path: Path, city_ids: set[str]) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and len(k) == MOBILE_PREFIX_DIGITS and v in city_ids for k, v in data.items()
    ):
        log.warning("mobile prefix cache %s is damaged; rebuilding it", path)
        return None
    return data


def _write_cache(path: Path, prefixes: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mobile-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(prefixes, fh, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: every load builds the map again, nothing worse
        log.info("mobile prefix cache not written (%s)", exc)


@lru_cache(maxsize=16)
def _prefixes_for(region_name: str, level: Level, cities: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The region's map: memoised in the process, and on disk (keyed by the data's version and the cities)
    so a classic-AGI process per call reads ≈ 0.2 MB of JSON instead of the 20 MB of geodata."""
    path = _cache_file(region_name, level, cities)
    cached = _read_cache(path, {c for c, _ in cities})
    if cached is not None:
        return cached
    try:
        descriptions = mobile_descriptions()
    except (ImportError, OSError, SyntaxError) as exc:  # the package is a dependency; degrade, never fail a load
        log.warning("phonenumbers geodata unavailable (%s): mobile callers name no city", exc)
        return {}
    matched: dict[str, str | None] = {}
    by_text: dict[str, str | None] = {}
    for prefix, text in descriptions.items():
        if text not in by_text:
            by_text[text] = match_city(text, cities, region_name, level)
        matched[prefix] = by_text[text]
    prefixes = expand_prefixes(matched)
    _write_cache(path, prefixes)
    return prefixes


def mobile_city_prefixes(cfg: MergerConfig) -> dict[str, str]:
    """``{first seven digits of a mobile number: city id}`` for the config's cities.

    Out-of-region prefixes are absent, so such a caller keeps the region's default. The same
    dict object is returned for the same region and cities: treat it as read-only.
    """
    cities = tuple((c.id, c.name) for c in cfg.cities)
    return _prefixes_for(cfg.region.name, cfg.region.level, cities)
