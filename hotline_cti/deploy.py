"""``hotline-cti deploy``: an edited merger file onto a running Asterisk and its controller, or nothing at all.

validate → routing diff against the file in service → render (with the static checks) → write the
changed files atomically into Asterisk's directory → reload through AMI (dialplan, queues,
features, confbridge) → verify through AMI that Asterisk has every expected inbound extension,
queue and one-key feature (``features show``: feature map, application map, feature group) →
install the merger file where the controller reads it (it reloads within a second) →
on any failure after the first write, put every file back, reload again and say so.

The AMI link is checked before anything is written, so an unreachable Asterisk changes nothing; a
second deploy into the same directory while one runs is refused, naming the first
(:mod:`hotline_cti.deploy_lock`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from hotline_cti.adapters.ami.client import AmiClient
from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.checked import Checked, load_checked, localise
from hotline_cti.config.diff import routing_diff
from hotline_cti.config.errors import ConfigError
from hotline_cti.deploy_lock import DeployLocked, deploy_lock
from hotline_cti.dialplan.check import check_directory
from hotline_cti.dialplan.confparse import Section, parse_extensions, parse_sections
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all

INBOUND = "hotline-inbound"
# What each generated file needs reloaded (AMI action Reload, Module: ...), in this order.
RELOADS = (
    ("extensions.conf", "pbx_config.so"),
    ("queues.conf", "app_queue.so"),
    ("queuerules.conf", "app_queue.so"),  # the same module: reloaded once when both changed
    ("features.conf", "features"),
    ("confbridge.conf", "app_confbridge.so"),
)


# ``features show`` (main/features_config.c): "%-25s %-7s %-7s" rows of built-in features, then dynamic
# ones ("no def" as their default), then "===> Group: <name>" and "===> --> <item> (<keys>)".
NAME_WIDTH, CURRENT_COLUMN = 25, 34  # "%-25s %-7s %-7s": name, space, default, space, current
BUILTIN = {
    "blindxfer": "Blind Transfer",
    "atxfer": "Attended Transfer",
    "disconnect": "Disconnect Call",
    "parkcall": "Park Call",
    "automixmon": "One Touch MixMonitor",
}


def _modules(files: list[str]) -> list[str]:
    """The modules to reload for ``files``, in RELOADS order, each once."""
    return list(dict.fromkeys(module for name, module in RELOADS if name in files))


class DeployError(RuntimeError):
    """A step failed; the message says which and why."""


class Asterisk(Protocol):
    """What deploy needs from Asterisk's manager interface."""

    async def ping(self) -> None: ...

    async def reload(self, module: str) -> None: ...

    async def extensions(self, context: str) -> set[str]: ...

    async def queues(self) -> set[str]: ...

    async def features(self) -> set[str]: ...


@dataclass(frozen=True)
class Plan:
    new: Path  # the edited merger file
    in_service: Path | None  # the controller's merger file (what is in service); replaced last
    asterisk_dir: Path  # where Asterisk #includes the generated files from
    options: RenderOptions
    at: dt.datetime | None = None  # routing diff instant (naive: the file's timezone; default now)
    dry_run: bool = False
    lock_wait: float = 0.0  # seconds to wait for another deploy into the same directory (0: refuse at once)


@dataclass(frozen=True)
class Expected:
    """What Asterisk must show after the reload."""

    extensions: frozenset[str]  # of [hotline-inbound]
    queues: frozenset[str]
    features: frozenset[str] = frozenset()  # as feature_lines() words them


def feature_lines(sections: Iterable[Section]) -> frozenset[str]:
    """What features.conf sets, one 'map name keys' string each, as ``features show`` can confirm it."""
    out: set[str] = set()
    for sec in sections:
        if sec.name == "featuremap":
            out |= {f"featuremap {BUILTIN[key]} {value}" for key, value in sec.items if key in BUILTIN}
        elif sec.name == "applicationmap":
            out |= {f"applicationmap {key} {value.split(',')[0].strip()}" for key, value in sec.items}
        elif sec.name != "general":  # [<group>]: a feature group, item => keys
            out |= {f"group {sec.name} {key} {value.strip()}" for key, value in sec.items}
    return frozenset(out)


def expected(files: Mapping[str, str]) -> Expected:
    """The inbound extensions, the queues and the features the rendered files define."""
    contexts = parse_extensions(files["extensions.conf"])
    inbound = contexts.get(INBOUND)
    extensions = frozenset(inbound.extensions) if inbound is not None else frozenset()
    queues = frozenset(s.name for s in parse_sections(files["queues.conf"], "queues.conf") if s.name != "general")
    features = (
        feature_lines(parse_sections(files["features.conf"], "features.conf"))
        if "features.conf" in files
        else frozenset()
    )
    return Expected(extensions, queues, features)


_DYNAMIC = re.compile(r"^(\S+)\s+no def\s+(\S+)\s*$")
_GROUP = re.compile(r"^===> Group: (\S+)\s*$")
_GROUP_ITEM = re.compile(r"^===> --> (\S+) \((\S*)\)\s*$")


def shown_features(output: Iterable[str]) -> set[str]:
    """The features ``features show`` lists, worded as :func:`feature_lines` words them."""
    out: set[str] = set()
    group = ""
    for line in output:
        if m := _DYNAMIC.match(line):
            out.add(f"applicationmap {m.group(1)} {m.group(2)}")
        elif m := _GROUP.match(line):
            group = m.group(1)
        elif (m := _GROUP_ITEM.match(line)) and group:
            out.add(f"group {group} {m.group(1)} {m.group(2)}")
        elif line[:CURRENT_COLUMN].strip() and line[:NAME_WIDTH].strip() in BUILTIN.values():
            current = line[CURRENT_COLUMN:].strip()  # fixed columns: a default may be empty (atxfer)
            if current:  # no current keys: the feature is off
                out.add(f"featuremap {line[:NAME_WIDTH].strip()} {current}")
    return out


def _write_atomically(path: Path, data: bytes) -> None:
    """Same-directory temp file, fsync, rename over ``path``: readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _restore(path: Path, old: bytes | None) -> None:
    if old is None:
        path.unlink(missing_ok=True)
    else:
        _write_atomically(path, old)


def _load(path: Path, what: str, out: TextIO) -> Checked:
    try:
        return load_checked(str(path))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {what}: {problem}", file=out)
        raise DeployError(f"{path} is not a valid merger file") from None


async def verify(asterisk: Asterisk, want: Expected) -> list[str]:
    """What Asterisk lacks of ``want``, as sentences (empty when all is there)."""
    problems: list[str] = []
    have_ext = await asterisk.extensions(INBOUND)
    missing = sorted(want.extensions - have_ext)
    if missing:
        problems.append(f"[{INBOUND}] lacks {len(missing)} extension(s): {', '.join(missing[:8])}")
    have_q = await asterisk.queues()
    missing_q = sorted(want.queues - have_q)
    if missing_q:
        problems.append(f"Asterisk lacks {len(missing_q)} queue(s): {', '.join(missing_q[:8])}")
    if want.features:
        missing_f = sorted(want.features - await asterisk.features())
        if missing_f:
            problems.append(f"features show lacks {len(missing_f)} feature(s): {'; '.join(missing_f[:8])}")
    return problems


async def deploy(plan: Plan, asterisk: Asterisk | None, out: TextIO) -> int:
    """Run the cut-over; 0 done (or dry run), 1 refused or failed and rolled back, 3 the roll-back failed too.

    A real deploy holds the directory's deploy lock throughout, so two deploys never interleave their
    writes, reloads and roll-backs; a dry run writes nothing and takes no lock.
    """
    if plan.dry_run:
        return await _deploy(plan, asterisk, out)
    try:
        with deploy_lock(plan.asterisk_dir, str(plan.new), out, wait=plan.lock_wait):
            return await _deploy(plan, asterisk, out)
    except DeployLocked as exc:
        print(f"deploy: {exc}; nothing changed", file=out)
        return 1


async def _deploy(plan: Plan, asterisk: Asterisk | None, out: TextIO) -> int:
    try:
        new = _load(plan.new, "new file", out)
    except DeployError as exc:
        print(f"deploy: {exc}; nothing changed", file=out)
        return 1
    print(f"deploy: {plan.new}: valid ({len(new.model.hotlines)} lines)", file=out)

    # The routing diff against what is in service.
    at = localise(plan.at, new.table.timezone)  # naive: the file's timezone; None: now
    if plan.in_service is not None and plan.in_service.exists():
        try:
            old = _load(plan.in_service, "in service", out)
        except DeployError as exc:
            print(f"deploy: warning: {exc}; no routing diff", file=out)
        else:
            lines, summary = routing_diff(old, new, at, at)
            print(f"routing diff at {at.isoformat(timespec='minutes')}: {plan.in_service} -> {plan.new}", file=out)
            for line in lines:
                print(f"  {line}", file=out)
            print(f"  {summary}", file=out)
    else:
        print("routing diff: nothing in service yet", file=out)

    # Render and check before touching anything.
    files = render_all(new.model, plan.options)
    with tempfile.TemporaryDirectory(prefix="hotline-deploy-") as tmp:
        write_all(files, Path(tmp))
        problems = check_directory(Path(tmp), set(known_prompt_ids(load_catalogue(), new.model)))
    if problems:
        for problem in problems:
            print(f"error: rendered dialplan: {problem}", file=out)
        print("deploy: the rendered files fail their checks; nothing changed", file=out)
        return 1
    want = expected(files)
    current = {
        name: (plan.asterisk_dir / name).read_bytes() if (plan.asterisk_dir / name).exists() else None for name in files
    }
    changed = [name for name, text in sorted(files.items()) if current[name] != text.encode("utf-8")]
    merger_changes = plan.in_service is not None and (
        not plan.in_service.exists() or plan.in_service.read_bytes() != plan.new.read_bytes()
    )
    for name in sorted(files):
        state = "changes" if name in changed else "unchanged"
        print(f"{plan.asterisk_dir / name}: {state}", file=out)
    if plan.in_service is not None:
        print(f"{plan.in_service}: {'changes' if merger_changes else 'unchanged'}", file=out)
    if plan.dry_run:
        reloads = _modules(changed)
        print(f"dry run: would write {len(changed)} file(s), reload {', '.join(reloads) or 'nothing'}", file=out)
        return 0
    if asterisk is None:
        raise DeployError("no AMI connection")

    try:
        await asterisk.ping()
    except Exception as exc:
        print(f"deploy: Asterisk's manager does not answer ({exc}); nothing changed", file=out)
        return 1

    old_merger = plan.in_service.read_bytes() if plan.in_service is not None and plan.in_service.exists() else None
    written: list[str] = []
    step = "write"
    try:
        plan.asterisk_dir.mkdir(parents=True, exist_ok=True)
        for name in changed:
            _write_atomically(plan.asterisk_dir / name, files[name].encode("utf-8"))
            written.append(name)
            print(f"wrote {plan.asterisk_dir / name}", file=out)
        step = "reload"
        for module in _modules(changed):
            await asterisk.reload(module)
            print(f"reloaded {module}", file=out)
        step = "verify"
        missing = await verify(asterisk, want)
        if missing:
            raise DeployError("; ".join(missing))
        print(
            f"verified: [{INBOUND}] has {len(want.extensions)} extensions, {len(want.queues)} queues present, "
            f"{len(want.features)} one-key features as features.conf sets them",
            file=out,
        )
        step = "controller"
        if plan.in_service is not None and merger_changes:
            plan.in_service.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(plan.in_service, plan.new.read_bytes())
            print(f"installed {plan.in_service}: the controller reloads it within a second", file=out)
    except Exception as exc:
        print(f"deploy: {step} failed: {exc}; rolling back", file=out)
        return await _roll_back(plan, asterisk, current, written, old_merger, out)
    print("deploy: done", file=out)
    return 0


async def _roll_back(
    plan: Plan,
    asterisk: Asterisk,
    previous: Mapping[str, bytes | None],
    written: list[str],
    old_merger: bytes | None,
    out: TextIO,
) -> int:
    failures: list[str] = []
    for name in written:
        try:
            _restore(plan.asterisk_dir / name, previous[name])
        except OSError as exc:
            failures.append(f"restore {name}: {exc}")
    if plan.in_service is not None:
        try:
            if old_merger is None:
                plan.in_service.unlink(missing_ok=True)
            elif plan.in_service.read_bytes() != old_merger:
                _write_atomically(plan.in_service, old_merger)
        except OSError as exc:
            failures.append(f"restore {plan.in_service}: {exc}")
    for module in _modules(written):
        try:
            await asterisk.reload(module)
        except Exception as exc:
            failures.append(f"reload {module}: {exc}")
    if failures:
        print(f"deploy: ROLL-BACK INCOMPLETE: {'; '.join(failures)}", file=out)
        return 3
    print(f"deploy: rolled back ({len(written)} file(s) restored and reloaded); Asterisk is as before", file=out)
    return 1


class AmiAsterisk:
    """:class:`Asterisk` over the project's AMI client."""

    def __init__(self, client: AmiClient, timeout: float = 15.0, *, connect: bool = False) -> None:
        self.client = client
        self.timeout = timeout
        # connect=True: log in at the first ping, after the deploy lock and the file checks, so an
        # unreachable manager is reported as such ("nothing changed") and never hides a held lock.
        self._connect = connect

    async def ping(self) -> None:
        if self._connect:
            self._connect = False
            await self.client.connect()
        await self.client.action("Ping", timeout=self.timeout)

    async def reload(self, module: str) -> None:
        result = await self.client.action("Reload", {"Module": module}, timeout=self.timeout, check=False)
        if not result.success:
            raise DeployError(f"Reload {module}: {result.get('Message', '(no message)')}")

    async def extensions(self, context: str) -> set[str]:
        result = await self.client.action("ShowDialPlan", {"Context": context}, timeout=self.timeout, check=False)
        if not result.success:
            raise DeployError(f"ShowDialPlan {context}: {result.get('Message', '(no message)')}")
        return {e["Extension"] for e in result.events if e.get("Context") == context and e.get("Extension")}

    async def queues(self) -> set[str]:
        result = await self.client.action("QueueSummary", timeout=self.timeout, check=False)
        if not result.success:
            raise DeployError(f"QueueSummary: {result.get('Message', '(no message)')}")
        return {e["Queue"] for e in result.events if e.get("Queue")}

    async def features(self) -> set[str]:
        # No AMI action lists the application map; the CLI's does, through Command (manager 'command' right).
        result = await self.client.action("Command", {"Command": "features show"}, timeout=self.timeout, check=False)
        if not result.success:
            raise DeployError(f"Command features show: {result.get('Message', '(no message)')}")
        lines = [part for text in result.response.get_all("Output") for part in text.splitlines()]
        return shown_features(lines)
