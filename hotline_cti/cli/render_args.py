"""The dialplan options ``dialplan render`` and ``deploy`` share: the flags and the options they make."""

from __future__ import annotations

import argparse

from hotline_cti.dialplan.options import DEFAULT_CONTROLLER, RenderOptions


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """``--agi``/``--controller`` (repeatable), ``--agi-timeout`` and ``--dial-timeout``."""
    parser.add_argument(
        "--agi",
        "--controller",
        dest="controller",
        action="append",
        metavar="HOST:PORT|hagi://DOMAIN",
        help=f"FastAGI controller the dialplan asks (repeat for failover, tried in order; default {DEFAULT_CONTROLLER})",
    )
    parser.add_argument(
        "--agi-timeout",
        type=float,
        metavar="SECONDS",
        help="ask the next controller when one holds a call this long without a decision (default: no limit)",
    )
    parser.add_argument("--dial-timeout", type=int, default=30, help="seconds to ring dialled seats (default 30)")


def render_options(args: argparse.Namespace) -> RenderOptions:
    """The options of those flags; ValueError naming the flags when they do not make a dialplan."""
    try:
        return RenderOptions(
            controllers=tuple(args.controller or [DEFAULT_CONTROLLER]),
            dial_timeout=args.dial_timeout,
            agi_timeout=args.agi_timeout,
        )
    except ValueError as exc:
        raise ValueError(f"--agi/--agi-timeout/--dial-timeout: {exc}") from None
