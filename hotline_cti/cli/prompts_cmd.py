"""``hotline-cti prompts list|build``: the IVR prompt texts of merger files, and their audio.

Texts come from :mod:`hotline_cti.config.catalogue`; audio is rendered by
:mod:`hotline_cti.prompts.build` (espeak-ng + sox) into files Asterisk plays
as ``hotline/<id>``. See docs/prompts.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from hotline_cti.cli.config_cmd import format_problem, print_problems
from hotline_cti.config.catalogue import Catalogue, Lang, load_catalogue, prompts_for_config
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.prompts.build import BuildReport, ToolMissing, Voice, build_sounds
from hotline_cti.resources import shipped, source_tree
from hotline_cti.text_output import table

_TREE = source_tree()
# the checkout's ivr_prompts/sounds/; installed, ./ivr_prompts/sounds/ in the working directory
DEFAULT_OUT = (_TREE if _TREE is not None else Path()) / "ivr_prompts" / "sounds"


def default_configs() -> list[str]:
    """Every shipped merger_config/*.yaml (the checkout's, else the packaged examples), sorted."""
    return sorted(str(p) for p in shipped("merger_config").glob("*.yaml"))


def _catalogue() -> Catalogue | None:
    try:
        return load_catalogue()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return None


def collect(paths: list[str], catalogue: Catalogue, lang: Lang = "zh") -> tuple[dict[str, dict[str, str]], list[str]]:
    """The prompts of ``paths`` by region id (region -> id -> text), and every error found.

    Each region gets its own sound directory (one deployment plays one
    region's prompts as ``hotline/<id>``), so the same id may say different
    words in two regions (their ``retired-12312`` names the line each its own
    way). Files of one region (a city file extending its province's) share the
    directory, so there an id must mean the same words in all of them.
    """
    regions: dict[str, dict[str, str]] = {}
    source: dict[tuple[str, str], str] = {}
    errors: list[str] = []
    for path in paths:
        try:
            checked = load_checked(path)
            prompts = prompts_for_config(checked.model, catalogue, lang)
        except ConfigError as exc:
            errors += [format_problem(p, path) for p in exc.problems]
            continue
        except KeyError as exc:
            errors.append(f"{path}: {exc.args[0]}")
            continue
        region = checked.model.region.id
        merged = regions.setdefault(region, {})
        for prompt_id, text in prompts.items():
            if prompt_id in merged and merged[prompt_id] != text:
                errors.append(
                    f"{path}: prompt {prompt_id!r} says {text!r} but {source[region, prompt_id]} (same region "
                    f"{region!r}) says {merged[prompt_id]!r}; build them into separate --out directories"
                )
                continue
            merged.setdefault(prompt_id, text)
            source.setdefault((region, prompt_id), path)
    return regions, errors


def _select(prompts: dict[str, str], patterns: list[str] | None) -> dict[str, str]:
    if not patterns:
        return prompts
    return {k: v for k, v in prompts.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def cmd_list(args: argparse.Namespace) -> int:
    """Print id and text of the prompts of one config, or of the catalogue itself."""
    catalogue = _catalogue()
    if catalogue is None:
        return 1
    lang: Lang = args.lang
    if args.config:
        try:
            checked = load_checked(args.config)
        except ConfigError as exc:
            print_problems(exc, args.config, sys.stderr)
            return 1
        try:
            prompts = prompts_for_config(checked.model, catalogue, lang)
        except KeyError as exc:
            print(f"error: {args.config}: {exc.args[0]}", file=sys.stderr)
            return 1
    else:
        prompts = {k: (v.en if lang == "en" and v.en else v.zh) for k, v in catalogue.prompts.items()}
        prompts |= {f"{k}-<number>": v for k, v in catalogue.template_texts(lang).items()}
    print(table(("id", "text"), sorted(_select(prompts, args.only).items())))
    return 0


def _summary(report: BuildReport, out: Path) -> str:
    parts = [f"rendered {len(report.rendered)}", f"unchanged {len(report.unchanged)}"]
    if report.foreign:
        parts.append(f"kept {len(report.foreign)} not made by this build ({', '.join(report.foreign)})")
    if report.failed:
        parts.append(f"failed {len(report.failed)}")
    return f"{out}: " + ", ".join(parts)


def cmd_build(args: argparse.Namespace) -> int:
    """Render the prompts of the configs to 8 kHz WAV files; print rendered/unchanged counts."""
    catalogue = _catalogue()
    if catalogue is None:
        return 1
    paths = args.config or default_configs()
    if not paths:
        print(f"error: no merger files: give --config FILE (none in {shipped('merger_config')})", file=sys.stderr)
        return 1
    regions, errors = collect(paths, catalogue)
    if errors:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    selected = {region: _select(prompts, args.only) for region, prompts in regions.items()}
    if not any(selected.values()):
        print(f"error: no prompt matches {' '.join(args.only or [])}", file=sys.stderr)
        return 1
    code = 0
    for region, prompts in sorted(selected.items()):
        if not prompts:
            continue
        out = Path(args.out) / region
        try:
            report = build_sounds(prompts, out, force=args.force, jobs=args.jobs, voice=Voice())
        except ToolMissing as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except (OSError, ValueError) as exc:
            print(f"error: {out}: {exc}", file=sys.stderr)
            return 1
        for prompt_id, error in sorted(report.failed.items()):
            print(f"error: {out / prompt_id}.wav: {error}", file=sys.stderr)
        print(_summary(report, out))
        code = max(code, 1 if report.failed else 0)
    return code


def _jobs(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of parallel renders (1-64)")
    return int(text)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``prompts`` (list, build)."""
    prompts = sub.add_parser(
        "prompts",
        help="IVR prompt texts and their audio files",
        description="List the IVR prompts of merger files and render them to the WAV files Asterisk plays "
        "(hotline/<id>). See docs/prompts.md.",
    )
    psub = prompts.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    only_help = "only prompts whose id matches this shell pattern, e.g. 'transition-*' (repeatable)"

    p = psub.add_parser(
        "list",
        help="print id and text of every prompt",
        description="Print id and text of every prompt a merger file can play; without --config, the "
        "catalogue's prompts and templates.",
    )
    p.add_argument("--config", metavar="FILE", help="merger file")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="text language (default: zh)")
    p.add_argument("--only", action="append", metavar="PATTERN", help=only_help)
    p.set_defaults(func=cmd_list, prog=p.prog)

    p = psub.add_parser(
        "build",
        help="render prompts to 8 kHz mono 16-bit WAV files (espeak-ng + sox)",
        description="Render every prompt of the merger files with espeak-ng's Mandarin voice (cmn) and convert "
        "it with sox to 8000 Hz mono 16-bit PCM WAV, DIR/<region id>/<id>.wav (Asterisk plays it as "
        "hotline/<id> once that directory is installed as sounds/hotline). A manifest keeps a hash of text, "
        "voice and settings per file, so a re-run renders only what changed; files the build did not make are "
        "never touched. Needs the Debian packages espeak-ng and sox.",
    )
    p.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="merger file (repeatable; default: every merger_config/*.yaml)",
    )
    p.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        metavar="DIR",
        help="output directory; each region's files go to DIR/<region id>/ (default: %(default)s)",
    )
    p.add_argument("--force", action="store_true", help="re-render every file this build made, changed or not")
    p.add_argument("--jobs", type=_jobs, default=2, metavar="N", help="parallel renders (default: 2)")
    p.add_argument("--only", action="append", metavar="PATTERN", help=only_help)
    p.set_defaults(func=cmd_build, prog=p.prog)
