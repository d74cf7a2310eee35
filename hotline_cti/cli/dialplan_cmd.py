"""``hotline-cti dialplan render|check``: Asterisk files from a merger config, and their static checks.

See docs/dialplan.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hotline_cti.cli.config_cmd import print_problems
from hotline_cti.cli.render_args import add_render_arguments, render_options
from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.dialplan.check import check_directory
from hotline_cti.dialplan.render import render_all, write_all


def _prompts(config: str | None) -> set[str] | None:
    catalogue = load_catalogue()
    if config is None:
        return set(catalogue.prompts)
    try:
        model = load_checked(config).model
    except ConfigError as exc:
        print_problems(exc, config, sys.stderr)
        return None
    return set(known_prompt_ids(catalogue, model))


def _render(args: argparse.Namespace) -> int:
    try:
        model = load_checked(args.config).model
    except ConfigError as exc:
        print_problems(exc, args.config, sys.stderr)
        return 1
    try:
        opts = render_options(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output)
    for path in write_all(render_all(model, opts), out):
        print(f"wrote {path}")
    prompts = set(known_prompt_ids(load_catalogue(), model))
    problems = check_directory(out, prompts)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _check(args: argparse.Namespace) -> int:
    prompts = _prompts(args.config)
    if prompts is None:
        return 1
    problems = check_directory(Path(args.directory), prompts)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.directory}: ok")
    return 1 if problems else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dialplan render`` and ``dialplan check``."""
    parser = subparsers.add_parser("dialplan", help="generate and check Asterisk configuration")
    sub = parser.add_subparsers(dest="dialplan_command", required=True, metavar="ACTION")
    render = sub.add_parser(
        "render", help="write extensions.conf, queues.conf, features.conf, confbridge.conf, queuerules.conf"
    )
    render.add_argument("config", help="merger YAML file")
    render.add_argument("-o", "--output", required=True, help="directory to write, e.g. dialplans/guangxi/")
    add_render_arguments(render)
    render.set_defaults(func=_render)
    check = sub.add_parser("check", help="static checks of a directory of generated files")
    check.add_argument("directory")
    check.add_argument("--config", help="merger YAML whose prompts count as known (default: the catalogue only)")
    check.set_defaults(func=_check)
