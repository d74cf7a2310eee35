"""``hotline-cti agi`` / ``hotline-cti-agi``: one classic AGI session over stdin/stdout.

Asterisk runs it per call, e.g. ``AGI(hotline-cti-agi,route,${EXTEN},${HOTLINE_CITY})``.
See docs/fastagi.md (Classic AGI).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from hotline_cti.adapters.agi.classic import run_classic
from hotline_cti.adapters.agi.scripts import SCRIPTS
from hotline_cti.config.compile import compile_table
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config

CONFIG_ENV = "HOTLINE_CTI_CONFIG"


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help=f"merger YAML (default: ${CONFIG_ENV})")
    p.add_argument("--session-deadline", type=int, default=60, metavar="S", help="longest session, default 60 s")
    p.add_argument("script", choices=SCRIPTS, help="route or ivr")
    p.add_argument("args", nargs="*", help="the script's arguments, as after agi://host/SCRIPT")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``agi`` command."""
    p = sub.add_parser("agi", help="classic AGI over stdin/stdout (AGI(hotline-cti-agi,route,...))")
    _add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the config, then run one session on this process's stdin/stdout."""
    # stderr reaches Asterisk's log: warnings only, numbers masked where they are logged.
    logging.basicConfig(level=logging.WARNING, format="hotline-cti-agi %(levelname)s: %(message)s")
    path = args.config or os.environ.get(CONFIG_ENV)
    if not path:
        print(f"error: no merger config: pass --config FILE or set {CONFIG_ENV}", file=sys.stderr)
        return 2
    try:
        table = compile_table(load_config(path).model)
    except ConfigError as exc:
        # No decision: the dialplan sees no HOTLINE_DECIDED and queues the call in the general queue.
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {path}: {exc.strerror}", file=sys.stderr)
        return 1
    return run_classic(
        args.script,
        args.args,
        table,
        stdin=sys.stdin.buffer,
        stdout=sys.stdout.buffer,
        session_deadline=args.session_deadline,
    )


def console_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hotline-cti-agi`` console script (Asterisk's agi-bin)."""
    parser = argparse.ArgumentParser(prog="hotline-cti-agi", description="classic AGI over stdin/stdout")
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(console_main())
