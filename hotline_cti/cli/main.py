"""``hotline-cti`` command line: one sub-command module per area of work.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` and
sets ``func`` on its parser; ``func(args) -> int`` is the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hotline_cti.config.errors import ConfigError

COMMAND_MODULES = [
    "hotline_cti.cli.serve_cmd",
    "hotline_cti.cli.status_cmd",
    "hotline_cti.cli.config_cmd",
    "hotline_cti.cli.demo_cmd",
    "hotline_cti.cli.prompts_cmd",
    "hotline_cti.cli.dialplan_cmd",
    "hotline_cti.cli.transfer_cmd",
    "hotline_cti.cli.agent_cmd",
    "hotline_cti.cli.recordings_cmd",
    "hotline_cti.cli.spy_cmd",
    "hotline_cti.cli.wallboard_cmd",
    "hotline_cti.cli.agi_cmd",
    "hotline_cti.cli.deploy_cmd",
    "hotline_cti.cli.simulate_cmd",
    "hotline_cti.cli.report_cmd",
    "hotline_cti.cli.staffing_cmd",
    "hotline_cti.cli.callers_cmd",
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


def _leading_unknown_option(argv: Sequence[str]) -> str | None:
    """An option given before the command (``hotline-cti --bogus``), which argparse would report as
    a missing command instead of naming it."""
    for token in argv:
        if token in ("-h", "--help") or not token.startswith("-"):
            return None
        return token
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hotline-cti`` console script."""
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    unknown = _leading_unknown_option(given)
    if unknown is not None:
        parser.error(f"unrecognized arguments: {unknown} (options of a command go after it; see hotline-cti --help)")
    args = parser.parse_args(given)
    try:
        code: int = args.func(args)
    except ConfigError as exc:  # a file a command reads besides its main config (scenario, traffic, catalogue)
        for problem in exc.problems:
            print(f"hotline-cti {args.command}: error: {problem}", file=sys.stderr)
        return 1
    except OSError as exc:
        # The last line of defence for a file or path argument: one line naming it, never a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"hotline-cti {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
