"""Data files shipped with hotline-cti: the prompt catalogue, the example merger files, the demo's scenarios.

The repository keeps them in its top-level directories (``ivr_prompts/``, ``merger_config/``,
``simulators/scenarios/``), which is where developers edit them. A built wheel carries copies
of those files under ``hotline_cti/data/`` with the same layout (setup.py copies them at build
time), so ``simulators/scenarios/guangxi-busy-day.yaml``'s ``config: ../../merger_config/…``
still resolves. :func:`shipped` returns the checkout's file when running from a source tree,
else the packaged copy, found with :mod:`importlib.resources`.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

DATA_PACKAGE_DIR = "data"
# Top-level paths of the repository that a wheel ships under hotline_cti/data/ (see setup.py).
SHIPPED = ("ivr_prompts/catalogue.yaml", "merger_config", "simulators/scenarios")


def source_tree() -> Path | None:
    """The repository checkout this package runs from (an editable install), or None when installed."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "hotline_cti" / "resources.py").is_file():
        return root
    return None


def packaged(relative: str) -> Path:
    """``relative`` (e.g. ``merger_config/guangxi.yaml``) among the package's own data files."""
    base = importlib.resources.files("hotline_cti") / DATA_PACKAGE_DIR
    if not isinstance(base, Path):  # a zip import: the commands need real files
        raise FileNotFoundError(f"hotline_cti is not installed as plain files ({base}); reinstall it from the wheel")
    return base.joinpath(relative)


def shipped(relative: str) -> Path:
    """``relative`` in the checkout when running from one, else the packaged copy."""
    root = source_tree()
    if root is not None and (root / relative).exists():
        return root / relative
    return packaged(relative)
