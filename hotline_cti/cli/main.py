"""``hotline-cti`` command line: one sub-command module per area of work.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` and
sets ``func`` on its parser; ``func(args) -> int`` is the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = [
    "hotline_cti.cli.serve_cmd",
    "hotline_cti.cli.config_cmd",
    "hotline_cti.cli.demo_cmd",
    "hotline_cti.cli.prompts_cmd",
    "hotline_cti.cli.dialplan_cmd",
    "hotline_cti.cli.transfer_cmd",
    "hotline_cti.cli.wallboard_cmd",
    "hotline_cti.cli.agi_cmd",
    "hotline_cti.cli.deploy_cmd",
    "hotline_cti.cli.simulate_cmd",
    "hotline_cti.cli.report_cmd",
    "hotline_cti.cli.staffing_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="hotline-cti",
        description="12345 hotline merger: routing core, Asterisk AGI/AMI controller and tools",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hotline-cti`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
