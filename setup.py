"""Build hook: the wheel carries the top-level data directories as package data.

``ivr_prompts/catalogue.yaml``, ``merger_config/`` and ``simulators/scenarios/`` stay where the
design card puts them; at build time they are copied into ``hotline_cti/data/`` with the same
layout, where :mod:`hotline_cti.resources` finds them with importlib.resources. Everything else
is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Keep in step with hotline_cti.resources.SHIPPED.
SHIPPED = {
    "ivr_prompts": ["catalogue.yaml"],
    "merger_config": ["*.yaml", "traffic/*.yaml"],
    "simulators/scenarios": ["*.yaml"],
}


class BuildPyWithData(build_py):
    """build_py, then the shipped data files into build_lib/hotline_cti/data/."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's files directly
        target = Path(self.build_lib) / "hotline_cti" / "data"
        shutil.rmtree(target, ignore_errors=True)  # a file deleted from the checkout leaves no stale copy
        for folder, patterns in SHIPPED.items():
            for pattern in patterns:
                for src in sorted((ROOT / folder).glob(pattern)):
                    dest = target / folder / src.relative_to(ROOT / folder)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dest)


setup(cmdclass={"build_py": BuildPyWithData})
