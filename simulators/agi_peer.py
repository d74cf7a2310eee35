"""The Asterisk side of FastAGI, over real TCP, answering like res_agi.

Tests and the simulated PBX use it to run sessions against our controller.
AGISTATUS follows what real Asterisk 20 does: a refused or timed-out
connection is FAILURE at once; a server that closes without a word is
SUCCESS with nothing set; any command answered ``result=-1`` (a missing
prompt) makes the finished session FAILURE; a caller hangup is HANGUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from hotline_cti.adapters.agi.protocol import DEAD_CHANNEL_COMMANDS

SUCCESS, FAILURE, HANGUP = "SUCCESS", "FAILURE", "HANGUP"
APPLICATIONS = {"Playback", "Set", "MSet", "NoOp", "Wait", "Verbose", "Log"}
MSET_MAX_PAIRS = 99  # Asterisk 20's MSet parses up to 99 pairs; the rest stay in the last one


def separate_app_args(text: str, delim: str = ",", *, remove_chars: bool = True, max_args: int = 99) -> list[str]:
    """Split application arguments as Asterisk's ``__ast_app_separate_args`` (main/app.c) does.

    ``delim`` separates only outside quotes, parentheses and brackets; with ``remove_chars``
    quotes are dropped and a backslash makes the next character literal (and is dropped);
    the last of ``max_args`` takes the unparsed rest; a trailing ``delim`` leaves one more,
    empty argument (so ``NAME=`` is a name and an empty value).
    """
    args: list[str] = []
    paren = bracket = 0
    quote = False
    i, n = 0, len(text)
    ended_on_delim = False
    while i < n and len(args) < max_args - 1:
        cur: list[str] = []
        ended_on_delim = False
        while i < n:
            ch = text[i]
            if ch == "(":
                paren += 1
            elif ch == ")":
                paren = max(paren - 1, 0)
            elif ch == "[":
                bracket += 1
            elif ch == "]":
                bracket = max(bracket - 1, 0)
            elif ch == '"' and delim != '"':
                quote = not quote
                if remove_chars:
                    i += 1
                    continue
            elif ch == "\\":
                if remove_chars:
                    i += 1  # the backslash goes; the next character is kept as it is
                    ch = text[i] if i < n else ""
                else:
                    cur.append(ch)
                    i += 1
                    ch = text[i] if i < n else ""
            elif ch == delim and not paren and not quote and not bracket:
                i += 1
                ended_on_delim = True
                break
            cur.append(ch)
            i += 1
        args.append("".join(cur))
    if i < n or ended_on_delim:
        args.append(text[i:])
    return args


def run_application(channel: PeerChannel, app: str, data: str) -> int:
    """What ``EXEC app data`` does on the simulated channel; its result (-2: no such application)."""
    if app not in APPLICATIONS:
        return -2
    if app == "Set":
        name, sep, value = data.partition("=")
        if sep:
            channel.set(name, value)
    elif app == "MSet":  # pbx_builtin_setvar_multiple: pairs on ',', each pair on its first '='
        for pair in separate_app_args(data, max_args=MSET_MAX_PAIRS):
            parts = separate_app_args(pair, "=", remove_chars=False, max_args=2)
            if len(parts) == 2:
                channel.set(parts[0], parts[1])
    return 0


@dataclass
class PeerChannel:
    """One channel as the simulated Asterisk sees it."""

    env: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)
    dtmf: list[str] | str = field(default_factory=list)  # keys per GET DATA, in order ('' = timeout)
    sounds: set[str] | frozenset[str] | None = None  # existing sound files (None: all exist)
    hangup_after: int | None = None  # answer this many commands, then the caller hangs up
    commands: list[str] = field(default_factory=list)
    assigned: list[tuple[str, str]] = field(default_factory=list)  # every variable set, in order

    def __post_init__(self) -> None:
        if isinstance(self.dtmf, str):
            self.dtmf = [self.dtmf] if self.dtmf else []

    def set(self, name: str, value: str) -> None:
        """Set a channel variable (SET VARIABLE, or Set / MSet run through EXEC)."""
        self.variables[name] = value
        self.assigned.append((name, value))


def reply_to(channel: PeerChannel, line: str, failed: list[bool]) -> str:
    """res_agi's answer to one command line; sets ``failed[0]`` on a ``result=-1``."""
    try:
        words = shlex.split(line)
    except ValueError:
        return "520 Invalid command syntax.  Proper usage not available."
    upper = [w.upper() for w in words]
    verb = " ".join(upper[:2])
    if verb == "SET VARIABLE" and len(words) == 4:
        channel.set(words[2], words[3])
        return "200 result=1"
    if verb == "GET VARIABLE" and len(words) == 3:
        value = channel.variables.get(words[2])
        return "200 result=0" if value is None else f"200 result=1 ({value})"
    if verb == "STREAM FILE" and len(words) >= 3:
        if channel.sounds is not None and words[2] not in channel.sounds:
            failed[0] = True
            return "200 result=-1 endpos=0"
        return "200 result=0 endpos=8000"
    if verb == "GET DATA" and len(words) >= 3:
        if channel.sounds is not None and words[2] not in channel.sounds:
            failed[0] = True
            return "200 result=-1"
        keys = channel.dtmf.pop(0) if channel.dtmf else ""  # type: ignore[union-attr]
        return f"200 result={keys}" if keys else "200 result= (timeout)"
    if upper[:1] == ["EXEC"] and len(words) >= 2:
        return f"200 result={run_application(channel, words[1], words[2] if len(words) > 2 else '')}"
    if upper[:1] in (["ANSWER"], ["NOOP"], ["VERBOSE"], ["HANGUP"]):
        return "200 result=1" if upper[0] == "HANGUP" else "200 result=0"
    if verb in ("SET VARIABLE", "GET VARIABLE", "STREAM FILE", "GET DATA"):
        return "520-Invalid command syntax.  Proper usage follows:\nUsage: see core show agi\n520 End of proper usage."
    return "510 Invalid or unknown command"


async def run_fastagi(
    host: str,
    port: int,
    script: str,
    channel: PeerChannel,
    *,
    args: Sequence[str] = (),
    connect_timeout: float = 2.0,
    chunk_size: int | None = None,
    send_trying: bool = False,
    reply_delay: float = 0.0,
) -> str:
    """Run one FastAGI session like Asterisk; return AGISTATUS ('SUCCESS' | 'FAILURE' | 'HANGUP').

    ``chunk_size`` splits every write (1 tests replies cut inside UTF-8);
    ``send_trying`` sends ``100 result=0 Trying...`` before each reply;
    ``reply_delay`` seconds pass before each reply (a slow PBX, or sessions kept in flight).
    """
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_timeout)
    except (OSError, TimeoutError):
        return FAILURE

    async def send(text: str) -> None:
        data = text.encode()
        step = chunk_size or len(data) or 1
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
            await writer.drain()

    env = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://{host}:{port}/{script}",
        **channel.env,
    }
    for i, arg in enumerate(args, 1):
        env[f"agi_arg_{i}"] = arg
    failed = [False]
    answered = 0
    hung_up = False
    try:
        await send("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n")
        while True:
            raw = await reader.readline()
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            channel.commands.append(line)
            if channel.hangup_after is not None and answered >= channel.hangup_after:
                if not hung_up:
                    hung_up = True
                    await send("HANGUP\n")
                verb = line.upper()
                if not verb.startswith(DEAD_CHANNEL_COMMANDS):
                    await send("511 Command Not Permitted on a dead channel or intercept routine\n")
                    continue
            if reply_delay:
                await asyncio.sleep(reply_delay)
            if send_trying:
                await send("100 result=0 Trying...\n")
            await send(reply_to(channel, line, failed) + "\n")
            answered += 1
    except OSError:
        pass  # the controller dropped us: Asterisk goes on with what was set
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if hung_up:
        return HANGUP
    return FAILURE if failed[0] else SUCCESS


async def wait_listening(port: int, process: subprocess.Popen[bytes], host: str = "127.0.0.1") -> None:
    """Wait (up to 15 s) until the controller ``process`` accepts connections on ``host:port``."""
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"the controller exited with {process.returncode} before listening on {host}:{port}")
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"the controller did not listen on {host}:{port} within 15 s")


def run_classic_peer(
    process: subprocess.Popen[bytes],
    script: str,
    channel: PeerChannel,
    *,
    args: Sequence[str] = (),
    sighup: bool = True,
) -> str:
    """Play Asterisk's side of a classic AGI over the pipes of ``process``; return AGISTATUS.

    As res_agi does for a local AGI: the script name is ``agi_arg_1`` (the command line's first
    argument), and a caller hangup is a SIGHUP to the process, not a ``HANGUP`` line; after it
    only the dead-channel commands are answered, the rest get 511. ``sighup=False`` is a channel
    with ``AGISIGHUP=no``: the script learns of the hangup from the 511 replies alone.
    """
    assert process.stdin is not None and process.stdout is not None
    env = {"agi_request": "hotline-cti-agi", **channel.env}
    for i, arg in enumerate((script, *args), 1):
        env[f"agi_arg_{i}"] = arg
    failed = [False]
    answered = 0
    hung_up = False
    try:
        process.stdin.write(("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode())
        process.stdin.flush()
        while raw := process.stdout.readline():
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            channel.commands.append(line)
            if channel.hangup_after is not None and answered >= channel.hangup_after:
                if not hung_up:
                    hung_up = True
                    if sighup:
                        process.send_signal(signal.SIGHUP)
                if not line.upper().startswith(DEAD_CHANNEL_COMMANDS):
                    process.stdin.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
                    process.stdin.flush()
                    continue
            process.stdin.write((reply_to(channel, line, failed) + "\n").encode())
            process.stdin.flush()
            answered += 1
    except BrokenPipeError:
        pass  # the script exited: Asterisk goes on with what was set
    finally:
        process.stdin.close()
    if hung_up:
        return HANGUP
    return FAILURE if failed[0] else SUCCESS
