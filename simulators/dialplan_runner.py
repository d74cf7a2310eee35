"""The simulated PBX's dialplan engine: run one call through a generated extensions.conf.

It interprets exactly the applications and expressions the generator emits
(Set, NoOp, Answer, GotoIf, Goto, Gosub/Return, ExecIf, AGI, Queue, Dial,
Playback, UserEvent, Hangup) and raises :class:`UnsupportedDialplan` on anything else.
``AGI(agi://host:port/script,args)`` runs a real FastAGI session over TCP
through :mod:`simulators.agi_peer`, so the variables the controller sets are
the ones the dialplan then reads, and ``UserEvent`` bodies are recorded as AMI
would deliver them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from hotline_cti.dialplan.confparse import Context, Step, find_extension, parse_extensions, split_args
from simulators.agi_peer import PeerChannel, run_fastagi

# (host, port, script, args, variables) -> AGISTATUS. Sets variables in place.
AgiHook = Callable[[str, int, str, tuple[str, ...], dict[str, str]], Awaitable[str]]
# Queue name -> QUEUESTATUS to simulate ('ANSWERED' = an agent took the call). Default: ends in the queue.
Outcome = Callable[[str], str]

MAX_STEPS = 500


class UnsupportedDialplan(RuntimeError):
    """The dialplan uses an application or expression the simulator does not interpret."""


@dataclass
class CallResult:
    """Where the call ended and everything the dialplan set on the way."""

    kind: str  # queue | dial | hangup
    target: str | None  # queue name or dial string
    priority: int  # QUEUE_PRIO when queued
    variables: dict[str, str]
    agi: list[tuple[str, str]] = field(default_factory=list)  # (script, AGISTATUS)
    visited: list[str] = field(default_factory=list)  # queues and dial strings tried, in order
    trace: list[str] = field(default_factory=list)
    # UserEvents as AMI would deliver them: {"UserEvent": name, key: value, ...}, in order.
    events: list[dict[str, str]] = field(default_factory=list)
    played: list[str] = field(default_factory=list)  # sound names, in order, from Playback() and Read()


class _Hangup(Exception):
    pass


@dataclass
class _End(Exception):
    kind: str
    target: str | None


async def peer_agi(
    host: str,
    port: int,
    script: str,
    args: tuple[str, ...],
    variables: dict[str, str],
    *,
    dtmf: str | list[str] = "",
    sounds: frozenset[str] | None = None,
    commands: list[str] | None = None,
    reply_delay: float = 0.0,
) -> str:
    """Run a FastAGI session with :mod:`simulators.agi_peer`; the controller sets ``variables`` in place.

    Bind the keyword arguments with :func:`functools.partial` to make an :data:`AgiHook`:
    ``dtmf`` keys per GET DATA, ``sounds`` that exist (None: all), ``commands`` collects every
    command line received, ``reply_delay`` slows every reply.
    """
    env = {
        "agi_channel": variables.get("CHANNEL", "PJSIP/trunk-00000001"),
        "agi_uniqueid": variables.get("UNIQUEID", ""),
        "agi_extension": variables.get("EXTEN", ""),
        "agi_callerid": variables.get("CALLERID(num)", ""),
    }
    channel = PeerChannel(env, variables, list(dtmf) if isinstance(dtmf, list) else dtmf, sounds)
    status = await run_fastagi(host, port, script, channel, args=args, reply_delay=reply_delay)
    if commands is not None:
        commands.extend(channel.commands)
    return status


_VAR_START = "${"


def _find_close(text: str, start: int, open_ch: str, close_ch: str) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_ch:
            depth += 1
        elif text[i] == close_ch:
            depth -= 1
            if depth == 0:
                return i
    raise UnsupportedDialplan(f"unbalanced {open_ch}{close_ch} in {text!r}")


_EXPR = re.compile(r'^\s*"([^"]*)"\s*(=|!=)\s*"([^"]*)"\s*$')


def _absolute_timeout(variables: Mapping[str, str]) -> float | None:
    """Seconds of the channel's ``TIMEOUT(absolute)`` (func_timeout: none when empty or 0)."""
    raw = variables.get("TIMEOUT(absolute)", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise UnsupportedDialplan(f"TIMEOUT(absolute)={raw!r} is not a number of seconds") from None
    return seconds if seconds > 0 else None


class DialplanRunner:
    """Runs calls through parsed contexts. Queue/Dial outcomes are simulated by ``outcome``."""

    def __init__(
        self,
        contexts: Mapping[str, Context],
        *,
        agi: AgiHook = peer_agi,
        outcome: Outcome | None = None,
        dial_outcome: Callable[[str], str] | None = None,
        keys: Sequence[str] = (),
    ) -> None:
        self.contexts = contexts
        self.agi = agi
        self.outcome = outcome or (lambda name: "END")
        self.dial_outcome = dial_outcome or (lambda dial: "END")
        # What the caller keys at each Read(), in order ("" lets the read time out); none left: time-outs.
        self.keys = tuple(keys)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> DialplanRunner:
        """Load ``path`` (an extensions.conf) with the project's parser."""
        text = Path(path).read_text(encoding="utf-8")
        return cls(parse_extensions(text, str(path)), **kwargs)  # type: ignore[arg-type]

    # -- expressions -------------------------------------------------------
    def substitute(self, text: str, variables: Mapping[str, str]) -> str:
        """Expand ``${VAR}``, ``${CALLERID(name)}`` and ``$[ "a" = "b" ]`` the way Asterisk does."""
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                end = _find_close(text, i + 1, "{", "}")
                name = self.substitute(text[i + 2 : end], variables)
                function = _function(name)
                if function is not None:
                    out.append(function)
                    i = end + 1
                    continue
                if ":" in name or not re.match(r"^[A-Za-z0-9_]+(\((name|num)\))?$", name):
                    raise UnsupportedDialplan(f"variable expression ${{{name}}} is not supported by the simulator")
                out.append(variables.get(name, ""))
                i = end + 1
            elif text.startswith("$[", i):
                end = _find_close(text, i + 1, "[", "]")
                out.append(self._expr(self.substitute(text[i + 2 : end], variables)))
                i = end + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    @staticmethod
    def _expr(expr: str) -> str:
        match = _EXPR.match(expr)
        if match is None:
            raise UnsupportedDialplan(f"expression $[{expr}] is not supported by the simulator")
        left, op, right = match.groups()
        return "1" if (left == right) == (op == "=") else "0"

    # -- running -----------------------------------------------------------
    async def run(
        self,
        context: str,
        exten: str,
        variables: Mapping[str, str] | None = None,
        *,
        uniqueid: str = "1700000000.1",
        keys: Sequence[str] | None = None,
    ) -> CallResult:
        """Run a call arriving in ``context`` for ``exten`` until it ends in a queue, a dial or a hang-up.

        ``keys``: this caller's keys at each Read() (default: the runner's).
        """
        vars_: dict[str, str] = {"UNIQUEID": uniqueid, "CHANNEL": f"PJSIP/trunk-{uniqueid}", **(variables or {})}
        result = CallResult("hangup", None, 0, vars_)
        keys = list(self.keys if keys is None else keys)
        ctx, ext, prio = context, exten, 1
        stack: list[tuple[str, str, int]] = []
        try:
            for _ in range(MAX_STEPS):
                step, ext_name = self._step(ctx, ext, prio)
                vars_["CONTEXT"], vars_["EXTEN"], vars_["PRIORITY"] = ctx, ext, str(step.priority)
                result.trace.append(f"[{ctx}] {ext_name},{step.priority} {step.app}({step.args})")
                jump = await self._exec(step.app, step.args, ctx, ext, vars_, result, stack, keys)
                if jump is None:
                    prio = step.priority + 1
                else:
                    ctx, ext, prio = jump
            raise UnsupportedDialplan(f"more than {MAX_STEPS} steps: a loop? last at [{ctx}] {ext},{prio}")
        except _Hangup:
            pass
        except _End as end:
            result.kind, result.target = end.kind, end.target
        result.priority = int(vars_.get("QUEUE_PRIO") or 0)
        return result

    def _step(self, ctx: str, ext: str, prio: int) -> tuple[Step, str]:
        context = self.contexts.get(ctx)
        if context is None:
            raise UnsupportedDialplan(f"no context [{ctx}]")
        name = find_extension(context, ext)
        if name is None:
            raise _Hangup()  # Asterisk hangs up a channel with nowhere to go
        for step in context.extensions[name]:
            if step.priority == prio:
                return step, name
        raise _Hangup()  # ran off the end of the extension

    def _resolve(self, ctx: str, ext: str, dest: str) -> tuple[str, str, int]:
        parts = [p.strip() for p in split_args(dest)]
        if len(parts) == 1:
            parts = [ctx, ext, parts[0]]
        elif len(parts) == 2:
            parts = [ctx, *parts]
        tctx, text, tprio = parts
        if tprio.isdigit():
            return tctx, text, int(tprio)
        context = self.contexts.get(tctx)
        name = find_extension(context, text) if context else None
        if context is None or name is None:
            raise UnsupportedDialplan(f"jump to missing [{tctx}] {text}")
        for step in context.extensions[name]:
            if step.label == tprio:
                return tctx, text, step.priority
        raise UnsupportedDialplan(f"jump to missing label {tprio!r} in [{tctx}] {text}")

    async def _exec(
        self,
        app: str,
        raw: str,
        ctx: str,
        ext: str,
        v: dict[str, str],
        result: CallResult,
        stack: list[tuple[str, str, int]],
        keys: list[str],
    ) -> tuple[str, str, int] | None:
        args = self.substitute(raw, v)
        if app in ("NoOp", "Answer"):
            return None
        if app == "Set":
            name, _, value = args.partition("=")
            v[name.lstrip("_")] = value
            return None
        if app == "ExecIf":
            cond, _, rest = args.partition("?")
            branches = split_args(rest, ":")
            chosen = branches[0] if cond.strip() not in ("", "0") else (branches[1] if len(branches) > 1 else "")
            if chosen:
                paren = chosen.index("(")
                # The inner arguments are already expanded: run them without a second expansion.
                inner_app, inner_args = chosen[:paren], chosen[paren + 1 : -1]
                if inner_app != "Set":
                    raise UnsupportedDialplan(f"ExecIf of {inner_app} is not supported by the simulator")
                name, _, value = inner_args.partition("=")
                v[name.lstrip("_")] = value
            return None
        if app == "GotoIf":
            cond, _, rest = args.partition("?")
            branches = split_args(rest, ":")
            chosen = branches[0] if cond.strip() not in ("", "0") else (branches[1] if len(branches) > 1 else "")
            return self._resolve(ctx, ext, chosen) if chosen.strip() else None
        if app == "Goto":
            return self._resolve(ctx, ext, args)
        if app == "Gosub":
            target = self._resolve(ctx, ext, args.split("(", 1)[0])
            stack.append((ctx, ext, int(v["PRIORITY"]) + 1))
            return target
        if app == "Return":
            if not stack:
                raise UnsupportedDialplan("Return() without Gosub")
            return stack.pop()
        if app == "AGI":
            parts = split_args(args)
            url = urlsplit(parts[0])
            if url.scheme != "agi" or url.hostname is None:
                raise UnsupportedDialplan(f"AGI({parts[0]}): only agi://host:port/script is supported")
            script = url.path.lstrip("/")
            session = self.agi(url.hostname, url.port or 4573, script, tuple(parts[1:]), v)
            limit = _absolute_timeout(v)
            if limit is None:
                status = await session
            else:
                # Asterisk arms the absolute timeout at Set() time; a decision takes microseconds here.
                try:
                    status = await asyncio.wait_for(session, limit)
                except TimeoutError:
                    # res_agi: HANGUP to the controller, AGI() returns; pbx.c clears the timeout, goes to T.
                    v["AGISTATUS"], v["TIMEOUT(absolute)"] = "HANGUP", "0"
                    result.agi.append((script, "TIMEOUT"))
                    context = self.contexts[ctx]
                    if find_extension(context, "T") != "T":
                        raise _Hangup() from None
                    return ctx, "T", 1
            v["AGISTATUS"] = status
            result.agi.append((script, status))
            if status == "HANGUP":
                raise _Hangup()
            return None
        if app == "Queue":
            name = split_args(args)[0]
            result.visited.append(name)
            status = self.outcome(name)
            v.pop("MEMBERINTERFACE", None)
            if status == "END":
                raise _End("queue", name)
            if status == "ANSWERED":
                v["MEMBERINTERFACE"] = "Local/1001@hotline-agents/n"
                result.kind, result.target = "queue", name
            else:
                v["QUEUESTATUS"] = status
            return None
        if app == "Dial":
            dial = split_args(args)[0]
            result.visited.append(dial)
            status = self.dial_outcome(dial)
            if status == "END":
                raise _End("dial", dial)
            v["DIALSTATUS"] = status
            if status == "ANSWER":
                result.kind, result.target = "dial", dial
            return None
        if app == "Playback":
            result.played.extend(name for name in args.split("&") if name)
            v["PLAYBACKSTATUS"] = "SUCCESS"
            return None
        if app == "Read":
            # Read(var,sound&sound,maxdigits,options,attempts,timeout): the prompts stop at the first key.
            name, sounds, maxdigits, *_ = [*split_args(args), "", "", ""]
            typed = keys.pop(0) if keys else ""
            result.played.extend(s for s in sounds.split("&") if s)
            v[name] = typed[: int(maxdigits)] if maxdigits.isdigit() and int(maxdigits) > 0 else typed
            v["READSTATUS"] = "OK" if typed else "TIMEOUT"
            return None
        if app == "UserEvent":
            name, *body = split_args(args)
            event = {"UserEvent": name.strip()}
            for item in body:
                key, sep, value = item.partition(":")
                if not sep:
                    raise UnsupportedDialplan(f"UserEvent body item {item!r} is not 'Key: value'")
                event[key.strip()] = value.strip()
            result.events.append(event)
            return None
        if app == "Hangup":
            raise _Hangup()
        raise UnsupportedDialplan(f"application {app}() is not supported by the simulator (at [{ctx}] {ext})")


def _function(text: str) -> str | None:
    """The two dialplan functions the recording's file name uses (``STRFTIME`` in UTC, ``FILTER``); None otherwise."""
    match = re.match(r"^(STRFTIME|FILTER)\((.*)\)$", text)
    if match is None:
        return None
    name, args = match.group(1), match.group(2)
    if name == "STRFTIME":
        epoch, _zone, fmt = [*args.split(",", 2), "", ""][:3]
        stamp = float(epoch) if epoch else time.time()
        return time.strftime(fmt or "%c", time.gmtime(stamp))
    allowed, _, value = args.partition(",")
    chars = set()
    i = 0
    while i < len(allowed):
        if i + 2 < len(allowed) and allowed[i + 1] == "-":
            chars |= {chr(c) for c in range(ord(allowed[i]), ord(allowed[i + 2]) + 1)}
            i += 3
        else:
            chars.add(allowed[i])
            i += 1
    return "".join(c for c in value if c in chars)
