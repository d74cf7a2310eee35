"""The layer contract of hotline_cti (docs/architecture.md), checked on every import in the tree.

Layers, top first; a unit imports only units of its own layer or below, and no two units import
each other, however indirectly. The core imports nothing of the project at all.
"""

from __future__ import annotations

import importlib.metadata
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.import_graph import (
    Contract,
    Import,
    all_problems,
    cycle_problems,
    declared_import_names,
    external_problems,
    imports_of,
    layer_problems,
    nested_cycle_problems,
    unit_edges,
)
from tests.paths import REPO

ROOT = REPO

LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),  # commands: parse arguments, call a service or a library, print
    ("serve", "demo", "deploy", "deploy_lock", "simulators"),  # services and whole runs: processes with a lifecycle
    ("adapters",),  # the outside world: AGI, AMI, MQTT
    ("records", "storage", "callers", "kpi", "wallboard", "dialplan", "prompts", "reports", "staffing"),
    ("config",),  # merger files: YAML, schema, checks, compiling the routing table
    # small shared modules: names of channel variables, events, masking, health, output helpers
    ("channel_vars", "events", "privacy", "health", "text_output", "event_loop", "logthrottle", "resources", "clock"),
    ("core",),  # decide(call, table, now): no I/O, no project imports
)


def _declared() -> frozenset[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    return declared_import_names(requirements, importlib.metadata.packages_distributions())


CONTRACT = Contract(
    package="hotline_cti",
    layers=LAYERS,
    whole=frozenset({"simulators"}),
    third_party=_declared(),
    isolated=frozenset({"core"}),
)


@pytest.fixture(scope="module")
def project_imports() -> list[Import]:
    return imports_of([ROOT / "hotline_cti", ROOT / "simulators"])


def test_the_project_keeps_its_layers(project_imports: list[Import]) -> None:
    runtime = [imp for imp in project_imports if imp.source.startswith("hotline_cti")]
    problems = [*cycle_problems(project_imports, CONTRACT), *layer_problems(project_imports, CONTRACT)]
    problems += nested_cycle_problems(project_imports, ["hotline_cti", "simulators"])
    problems += external_problems(runtime, CONTRACT)
    assert not problems, "layer contract broken:\n" + "\n".join(problems)


def test_the_graph_sees_the_imports_the_contract_is_about(project_imports: list[Import]) -> None:
    """The checker reads the real tree: the edges the architecture relies on are found (a checker that
    saw no imports would pass everything)."""
    edges = unit_edges(project_imports, CONTRACT)
    for edge in [("config", "core"), ("adapters", "core"), ("serve", "adapters"), ("cli", "serve")]:
        assert edge in edges, edge
    assert not [edge for edge in edges if edge[0] == "core"]
    # imported only inside a function (the simulated call runs need it, the runtime's commands do not)
    assert any(i.target == "simulators.pbx.realtime" for i in project_imports)


def test_every_package_is_placed() -> None:
    placed = {unit for layer in LAYERS for unit in layer}
    units = {p.stem for p in (ROOT / "hotline_cti").iterdir() if p.suffix == ".py" and p.stem != "__init__"}
    units |= {p.name for p in (ROOT / "hotline_cti").iterdir() if (p / "__init__.py").exists()}
    assert units - placed == set()


# ---------------------------------------------------------------- the checker can fail


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


TOY = Contract(
    package="toy",
    layers=(("cli",), ("adapters",), ("records", "storage"), ("config",), ("core",)),
    whole=frozenset(),
    third_party=frozenset({"yaml"}),
    isolated=frozenset({"core"}),
)


def test_a_cycle_hidden_in_a_function_and_under_type_checking_is_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/records/__init__.py": "",
            "toy/records/model.py": """\
                from __future__ import annotations
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from toy.storage.store import Store
                """,
            "toy/storage/__init__.py": "",
            "toy/storage/store.py": """\
                def save() -> None:
                    from ..records import model
                """,
        },
    )
    problems = list(all_problems(imports_of([tmp_path / "toy"]), TOY))
    assert problems == [
        "package cycle records <-> storage:\n"
        "  records -> storage: toy/records/model.py:4: toy.records.model imports toy.storage.store\n"
        "  storage -> records: toy/storage/store.py:2: toy.storage.store imports toy.records.model"
    ]


def test_an_import_up_the_layers_and_an_undeclared_library_are_named_with_file_and_line(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/core/__init__.py": "",
            "toy/core/routing.py": "import json\n\nfrom toy.config import schema\nimport requests\n",
            "toy/config/__init__.py": "",
            "toy/config/schema.py": "import yaml\nfrom toy import core\nfrom toy.adapters.agi import server\n",
            "toy/adapters/__init__.py": "",
            "toy/adapters/agi/__init__.py": "",
            "toy/adapters/agi/server.py": "from toy.config.schema import *\n",
            "toy/wallboard.py": "from toy.core import routing\n",
        },
    )
    imports = imports_of([tmp_path / "toy"])
    base = "toy"
    assert layer_problems(imports, TOY) == [
        "unit 'wallboard' is not in the layer order (cli -> adapters -> {records, storage} -> config -> core): "
        "place it in tests/test_layers.py LAYERS",
        f"{base}/config/schema.py:3: toy.config.schema imports toy.adapters.agi.server: config may not import "
        "adapters, which is above it in the layer order cli -> adapters -> {records, storage} -> config -> core",
        f"{base}/core/routing.py:3: toy.core.routing imports toy.config.schema: core may import nothing of the project",
    ]
    assert external_problems(imports, TOY) == [
        f"{base}/core/routing.py:4: core imports requests, which is not a declared dependency"
    ]
    assert cycle_problems(imports, TOY) == [
        "package cycle adapters <-> config <-> core:\n"
        f"  adapters -> config: {base}/adapters/agi/server.py:1: toy.adapters.agi.server imports toy.config.schema\n"
        f"  config -> adapters: {base}/config/schema.py:3: toy.config.schema imports toy.adapters.agi.server\n"
        f"  config -> core: {base}/config/schema.py:2: toy.config.schema imports toy.core\n"
        f"  core -> config: {base}/core/routing.py:3: toy.core.routing imports toy.config.schema"
    ]


def test_a_cycle_between_subpackages_or_modules_of_one_package_is_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/adapters/__init__.py": "",
            "toy/adapters/agi/__init__.py": "",
            "toy/adapters/agi/server.py": "from toy.adapters.ami import client\n",
            "toy/adapters/ami/__init__.py": "",
            "toy/adapters/ami/client.py": "import toy.adapters.ami.lines\n",
            "toy/adapters/ami/lines.py": "\n\ndef f() -> None:\n    from toy.adapters.agi.server import x\n",
            "toy/core/__init__.py": "",
            "toy/core/a.py": "from . import b\n",
            "toy/core/b.py": "from .a import thing\n",
        },
    )
    imports = imports_of([tmp_path / "toy"])
    assert cycle_problems(imports, TOY) == []  # all inside one unit
    assert nested_cycle_problems(imports, ["toy"]) == [
        "cycle inside toy.adapters: agi <-> ami:\n"
        "  agi -> ami: toy/adapters/agi/server.py:1: toy.adapters.agi.server imports toy.adapters.ami.client\n"
        "  ami -> agi: toy/adapters/ami/lines.py:4: toy.adapters.ami.lines imports toy.adapters.agi.server",
        "cycle inside toy.core: a <-> b:\n"
        "  a -> b: toy/core/a.py:1: toy.core.a imports toy.core.b\n"
        "  b -> a: toy/core/b.py:1: toy.core.b imports toy.core.a",
    ]


def test_declared_names_come_from_the_distributions() -> None:
    dists = {"yaml": ["PyYAML"], "sqlalchemy": ["SQLAlchemy"], "requests": ["requests"], "_yaml": ["PyYAML"]}
    assert declared_import_names(["PyYAML>=6.0", "sqlalchemy[asyncio]>=2.0; python_version>'3'"], dists) == {
        "yaml",
        "_yaml",
        "sqlalchemy",
    }
