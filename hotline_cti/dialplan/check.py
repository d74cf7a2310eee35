"""Static checks of generated (or hand-edited) Asterisk files.

Every Goto/GotoIf/Gosub/ChannelRedirect target, every Local/… dial target,
every queue the dialplan names and every prompt it plays must exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from hotline_cti.core.naming import EXPERT_INFIX, queue_name
from hotline_cti.dialplan.confparse import (
    ConfSyntaxError,
    Context,
    Section,
    find_extension,
    parse_extensions,
    parse_sections,
    split_args,
)

_VAR = re.compile(r"\$\{[^}]*\}")
_LOCAL = re.compile(r"Local/([^@,&/]+)@([^/,&)]+)")
_BRANCH_APPS = {"Goto", "Gosub", "ChannelRedirect"}
_QUEUE_VAR_EXPANSIONS = {"${HOTLINE_CENTRE}"}  # queue names built per centre at run time


def _has_var(text: str) -> bool:
    return "${" in text


def _check_target(
    contexts: dict[str, Context], ctx: str, ext: str, parts: list[str], where: str, problems: list[str]
) -> None:
    """``parts`` is [prio] / [exten, prio] / [context, exten, prio] as Goto takes them."""
    parts = [p.strip() for p in parts]
    if len(parts) == 1:
        target_ctx, target_ext, prio = ctx, ext, parts[0]
    elif len(parts) == 2:
        target_ctx, target_ext, prio = ctx, parts[0], parts[1]
    elif len(parts) == 3:
        target_ctx, target_ext, prio = parts
    else:
        problems.append(f"{where}: cannot read the jump target {','.join(parts)!r}")
        return
    if _has_var(target_ctx):
        return
    context = contexts.get(target_ctx)
    if context is None:
        problems.append(f"{where}: jumps to context {target_ctx!r}, which does not exist")
        return
    if _has_var(target_ext):
        return
    name = find_extension(context, target_ext)
    if name is None:
        problems.append(f"{where}: jumps to {target_ext!r} in [{target_ctx}], which has no such extension")
        return
    prio = prio.split("(", 1)[0]
    steps = context.extensions[name]
    if prio.isdigit():
        if not any(s.priority == int(prio) for s in steps):
            problems.append(f"{where}: [{target_ctx}] {name} has no priority {prio}")
    elif not _has_var(prio) and not any(s.label == prio for s in steps):
        problems.append(f"{where}: [{target_ctx}] {name} has no label {prio!r}")


def _goto_parts(app: str, args: str) -> list[list[str]]:
    """Jump targets named by an application call (as argument lists)."""
    if app in ("Goto", "Gosub"):
        return [split_args(args.split("(", 1)[0] if app == "Gosub" else args)]
    if app == "GotoIf":
        _, _, dests = args.partition("?")
        out = []
        for dest in split_args(dests, ":"):
            if dest.strip():
                out.append(split_args(dest))
        return out
    if app == "ChannelRedirect":
        return [split_args(args)[1:]]
    return []


def check_extensions(
    contexts: dict[str, Context], queues: set[str], prompts: set[str], centres: Iterable[str]
) -> list[str]:
    """Problems in a parsed dialplan: dangling jumps, Local/ targets, queues and prompts."""
    problems: list[str] = []
    centre_list = sorted(centres)
    for ctx in sorted(contexts):
        context = contexts[ctx]
        for inc in context.includes:
            if inc not in contexts:
                problems.append(f"[{ctx}]: includes {inc!r}, which does not exist")
        for ext, steps in sorted(context.extensions.items()):
            for step in steps:
                where = f"extensions.conf:{step.line} [{ctx}] {ext},{step.priority}"
                app, args = step.app, step.args
                if app == "ExecIf":
                    _, _, inner = args.partition("?")
                    paren = inner.find("(")
                    app, args = inner[:paren], inner[paren + 1 : -1]
                for parts in _goto_parts(app, args):
                    _check_target(contexts, ctx, ext, parts, where, problems)
                for exten, target_ctx in _LOCAL.findall(args):
                    if target_ctx not in contexts:
                        problems.append(f"{where}: Local channel into context {target_ctx!r}, which does not exist")
                    elif not _has_var(exten) and find_extension(contexts[target_ctx], exten) is None:
                        problems.append(f"{where}: Local/{exten}@{target_ctx}: no such extension")
                if app == "Queue":
                    name, *rest = split_args(args)
                    for target in re.findall(r"b\(([^)]*)\)", rest[0] if rest else ""):
                        _check_target(contexts, ctx, ext, target.split("^"), where, problems)
                    for expanded in _expand_queue(name, centre_list):
                        if expanded not in queues:
                            problems.append(f"{where}: queue {expanded!r} is not in queues.conf")
                if app == "Playback":
                    for sound in args.split(",")[0].split("&"):
                        if not _has_var(sound) and sound.split("/")[-1] not in prompts:
                            problems.append(f"{where}: plays {sound!r}, which is not in the prompt catalogue")
    return problems


def _expand_queue(name: str, centres: list[str]) -> list[str]:
    for var in _QUEUE_VAR_EXPANSIONS:
        if var in name:
            return [name.replace(var, c) for c in centres]
    return [] if _has_var(name) else [name]


def _check_rules(directory: Path, qsections: list[Section]) -> list[str]:
    """Every queue's ``defaultrule`` is a rule of queuerules.conf (app_queue ignores an unknown one silently)."""
    wanted = [(s.name, s.get("defaultrule")) for s in qsections if s.get("defaultrule")]
    if not wanted:
        return []
    try:
        rules = {
            s.name
            for s in parse_sections((directory / "queuerules.conf").read_text(encoding="utf-8"), "queuerules.conf")
        }
    except (OSError, ConfSyntaxError) as exc:
        return [f"queuerules.conf: {exc}"]
    return [f"queues.conf [{q}]: defaultrule={r} is not a rule of queuerules.conf" for q, r in wanted if r not in rules]


def check_directory(directory: Path, prompts: set[str]) -> list[str]:
    """Parse the files of ``directory`` and return every problem found (empty: all good)."""
    problems: list[str] = []
    try:
        contexts = parse_extensions((directory / "extensions.conf").read_text(encoding="utf-8"), "extensions.conf")
        qsections = parse_sections((directory / "queues.conf").read_text(encoding="utf-8"), "queues.conf")
        fsections = parse_sections((directory / "features.conf").read_text(encoding="utf-8"), "features.conf")
    except (OSError, ConfSyntaxError) as exc:
        return [str(exc)]
    queues = {s.name for s in qsections if s.name != "general"}
    for s in qsections:
        if s.name != "general" and s.get("autofill") != "yes":
            problems.append(f"queues.conf [{s.name}]: autofill=yes is missing")
        for key in ("announce", "periodic-announce"):
            sound = s.get(key)
            if sound and sound.split("/")[-1] not in prompts:
                problems.append(f"queues.conf [{s.name}]: {key}={sound} is not in the prompt catalogue")
    problems += _check_rules(directory, qsections)
    centres = {q.rsplit("-", 1)[0] for q in queues if EXPERT_INFIX not in q}
    centres = {c for c in centres if queue_name(c, "general") in queues}
    problems += check_extensions(contexts, queues, prompts, centres)
    feats = {s.name: s for s in fsections}
    if "featuremap" not in feats or feats["featuremap"].get("atxfer") is None:
        problems.append("features.conf: [featuremap] has no atxfer code (agents attended-transfer from queues)")
    codes = [(k, v) for k, v in feats["featuremap"].items] if "featuremap" in feats else []
    app_items = feats["applicationmap"].items if "applicationmap" in feats else []
    codes += [(k, split_args(v)[0].strip()) for k, v in app_items]
    for name, code in codes:
        for other, other_code in codes:
            if name != other and other_code.startswith(code):
                problems.append(f"features.conf: code {code} of {name} is a prefix of {other_code} of {other}")
    for name, value in app_items:
        fields = split_args(value)
        if len(fields) < 3:
            problems.append(f"features.conf [applicationmap] {name}: expected 'code,activate_on,App(args)'")
            continue
        app_text = fields[2]
        paren = app_text.find("(")
        app, args = (app_text[:paren], app_text[paren + 1 : -1]) if paren >= 0 else (app_text, "")
        for parts in _goto_parts(app, args):
            _check_target(contexts, "", "", parts, f"features.conf {name}", problems)
    return problems
