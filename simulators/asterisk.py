"""A real Asterisk 22 for tests and benchmarks, run in the Debian sid chroot of ``scripts/asterisk-rig.sh``.

:func:`rig_root` builds (or reuses) the chroot and returns its path, or raises
:class:`RigUnavailable` naming what is missing. :func:`start_asterisk` writes a
harness configuration under ``ROOT/tmp/hotline-rig-<name>-<pid>/`` that
``#include``\\ s the generated files unchanged, starts Asterisk on free loopback
ports and returns an :class:`AsteriskInstance` (stop it with ``.stop()``).
:class:`Ami` is a small synchronous AMI client that keeps every event, for
assertions on what Asterisk itself reports.

Sounds, music on hold and every directory Asterisk writes are per instance, so
two instances (two work trees, two test sessions) never share a file. The logs
(``log/messages.log``, ``log/full.log`` with every dialplan step) and Asterisk's
own CDR (``log/cdr-custom/Master.csv``) are in the instance dir; ``stop(keep_dir=True)``
keeps it (tests/asterisk/test_asterisk_calls.py does so with ``HOTLINE_RIG_KEEP=1``).
Asterisk is started so that it dies with the process that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import ctypes
import datetime as dt
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hotline_cti.adapters.agi.fastagi import FastAgiServer
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.schema import MergerConfig
from hotline_cti.records import cdr
from simulators.host import free_port as free_port  # re-exported: the rig's tests take it from here

REPO = Path(__file__).resolve().parent.parent
RIG_SCRIPT = REPO / "scripts" / "asterisk-rig.sh"
ASTERISK = "/usr/sbin/asterisk"
DEBIAN_ARCHIVE = ("deb.debian.org", 80)

# A WARNING or ERROR line of Asterisk's log (messages.log: "[time] LEVEL[thread](call id)? file: text").
_PROBLEM = re.compile(r"\] (?:WARNING|ERROR)\[")
# Asterisk's own notice that one of its internal queues backed up (main/taskprocessor.c, word for word): a
# loaded machine, not a configuration; seen at boot while app_queue loads hundreds of generated queues.
_HIGH_WATER = re.compile(
    r"\] WARNING\[\d+\](?:\[C-[0-9a-f]+\])? taskprocessor\.c: Taskprocessor '[^']+' queue reached "
    r"\d+ scheduled tasks \(high water mark: \d+\)(?: again)?\.$"
)


def log_problems(text: str) -> list[str]:
    """The WARNING and ERROR lines of an Asterisk log, less its taskprocessor high-water notices."""
    return [line for line in text.splitlines() if _PROBLEM.search(line) and not _HIGH_WATER.search(line)]


# features.conf's default xfersound and xferfailsound: Asterisk's own, in the rig's sounds (a test checks).
STOCK_SOUNDS = ("beep", "beeperr")
# Lines Asterisk writes about races of its own while channels move or go, never about a configuration (each
# read in Asterisk's source); the harness passes over them where channels are transferred or hung up.
_RACES = (
    # chan_pjsip: a target that refused with 486 had already gone (a busy taskprocessor).
    re.compile(r"Session already DISCONNECTED \[reason=486 \(Busy Here\)\]"),
    # main/file.c: openstream_internal sets the channel's write format, filehelper reads it back unlocked; a
    # bridge moving the channel in between skips the file as "not a supported format" (the errno is stale).
    re.compile(rf"file\.c: Unable to open (?:{'|'.join(STOCK_SOUNDS)}) \(format"),
    # res_musiconhold: ast_write refuses a channel with a hangup pending (the errno is stale), a Local leg going.
    re.compile(r"res_musiconhold\.c: Failed to write frame to 'Local/[^']+;2': No such file or directory$"),
)


def asterisk_race(line: str) -> bool:
    """Whether a WARNING or ERROR line is one of Asterisk's own races (``_RACES``), not a problem of ours."""
    return any(race.search(line) for race in _RACES)


# Modules loaded (autoload = no: a module that is not named is not loaded, so nothing binds a fixed
# port and the log holds no errors of unconfigured modules). The loader adds what these require.
MODULES = (
    # dialplan and the applications the generated dialplan and the harness use
    "pbx_config",
    "res_speech",  # res_agi needs it
    "res_agi",
    "app_dial",
    "app_queue",
    "app_playback",
    "app_read",
    "app_senddtmf",
    "app_playtones",
    "app_userevent",
    "app_exec",
    "app_stack",
    "app_verbose",
    "app_originate",
    "app_confbridge",
    "app_channelredirect",
    "app_echo",
    "app_softhangup",
    "app_mixmonitor",
    "app_chanspy",  # supervisor listen / whisper / barge
    "func_callerid",
    "func_channel",
    "func_strings",
    "func_logic",
    "func_cdr",
    "func_global",
    "func_math",
    "func_hangupcause",
    "func_timeout",
    "func_cut",
    "func_dialplan",
    "func_db",
    "func_sprintf",
    "func_devstate",
    "func_pjsip_endpoint",
    "func_pjsip_contact",
    # bridging and features (one-key transfers, ConfBridge)
    "bridge_simple",
    "bridge_softmix",
    "bridge_native_rtp",
    "bridge_holding",
    "bridge_builtin_features",
    "bridge_builtin_interval_features",
    # media
    "res_timing_timerfd",
    "res_musiconhold",
    "format_wav",
    "format_wav_gsm",
    "format_gsm",
    "format_pcm",
    "format_sln",
    "codec_ulaw",
    "codec_alaw",
    "codec_a_mu",
    "codec_gsm",
    "codec_resample",
    "codec_adpcm",
    "codec_g722",
    # SIP
    "res_pjproject",
    "res_sorcery_config",
    "res_sorcery_memory",
    "res_sorcery_astdb",
    "res_pjsip",
    "res_pjsip_session",
    "res_pjsip_pubsub",  # chan_pjsip needs it
    "chan_pjsip",
    "res_rtp_asterisk",
    "res_pjsip_sdp_rtp",
    "res_pjsip_endpoint_identifier_ip",
    "res_pjsip_endpoint_identifier_user",
    "res_pjsip_authenticator_digest",
    "res_pjsip_outbound_authenticator_digest",
    "res_pjsip_caller_id",
    "res_pjsip_dtmf_info",
    "res_pjsip_nat",
    "res_pjsip_rfc3326",
    "res_pjsip_registrar",
    "res_pjsip_header_funcs",
    "res_pjsip_logger",
    # records and tools
    "res_cdrel_custom",
    "cdr_custom",
    "res_clioriginate",
    "res_manager_devicestate",
)

# Columns of the harness's own CDR file (cdr_custom), in order: the ones serve --cdr-csv reads.
CDR_FIELDS = cdr.CDR_FIELDS

PR_SET_PDEATHSIG = 1  # linux/prctl.h
OWNER_MARK = ".hotline-rig-owner"  # "<module> <pid>" in every instance dir this module makes


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl  # noqa: B018 (resolve the symbol now)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()

GENERATED_FILES = ("extensions.conf", "queues.conf", "features.conf", "confbridge.conf")
OPTIONAL_FILES = ("queuerules.conf",)  # rendered since issue 18; a directory rendered before lacks it


class RigUnavailable(RuntimeError):
    """The real-Asterisk rig cannot be built or started here; the message names what is missing."""


def _can_reach(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def rig_root(script: Path = RIG_SCRIPT, timeout: float = 900.0) -> Path:
    """Run ``scripts/asterisk-rig.sh`` (cached: seconds once built) and return the chroot's path."""
    if os.geteuid() != 0:
        raise RigUnavailable(
            f"the real-Asterisk rig needs root (debootstrap, mount, chroot); this runs as uid {os.geteuid()}: "
            f"run the tests as root (CI does) or build it once with `sudo bash {script}`"
        )
    if not script.exists():
        raise RigUnavailable(f"{script} is missing")
    try:
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RigUnavailable(f"{script} did not finish in {timeout:.0f} s (debootstrap or apt-get hanging?)") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        if "needs root" in tail:
            why = "not root"
        elif not _can_reach(*DEBIAN_ARCHIVE):
            why = f"no network to Debian's archive ({DEBIAN_ARCHIVE[0]}:{DEBIAN_ARCHIVE[1]} unreachable)"
        elif "debootstrap" in tail:
            why = "debootstrap failed"
        elif "apt-get" in tail or "E: " in tail:
            why = "apt-get inside the chroot failed (asterisk packages from Debian sid)"
        elif "mount" in tail:
            why = "mounting proc or /dev in the chroot failed (a container without CAP_SYS_ADMIN?)"
        else:
            why = "the rig script failed"
        raise RigUnavailable(f"{why}: `bash {script}` exited {done.returncode}:\n{tail}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RigUnavailable(f"{script} printed no chroot path")
    root = Path(lines[-1])
    if not (root / ASTERISK.lstrip("/")).exists():
        raise RigUnavailable(f"{root} has no {ASTERISK}: remove {root} and run {script} again")
    if not (root / "proc" / "self").exists():
        raise RigUnavailable(f"{root}/proc is not mounted")
    return root


def silent_wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    """A silent 8 kHz mono 16-bit WAV, as Asterisk's format_wav reads it."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * max(1, int(seconds * rate)))
    return buf.getvalue()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def silent_prompts(cfg: MergerConfig) -> dict[str, bytes]:
    """A short silent WAV for every prompt ``cfg``'s dialplan plays (``start_asterisk(sounds=...)``): the rig
    checks which prompts play, not how they sound."""
    return {p: silent_wav(0.1) for p in known_prompt_ids(load_catalogue(), cfg)}


def _module_dir(root: Path) -> str:
    found = sorted(root.glob("usr/lib/*/asterisk/modules"))
    if not found:
        raise RigUnavailable(f"{root} has no usr/lib/*/asterisk/modules (asterisk-modules not installed?)")
    return "/" + str(found[0].relative_to(root))


# ---------------------------------------------------------------- AMI


Event = dict[str, str]


class AmiError(RuntimeError):
    """An AMI action failed or timed out."""


class Ami:
    """A synchronous AMI connection that keeps every event it receives (``events``) for assertions."""

    def __init__(self, port: int, user: str, secret: str, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self.events: list[Event] = []
        self.by_uniqueid: dict[str, list[Event]] = {}  # the same events, per channel
        self._responses: dict[str, Event] = {}
        self._cond = threading.Condition()
        self._next_id = 0
        self._closed = False
        self.banner = self._read_banner()
        self._reader = threading.Thread(target=self._read_loop, name=f"ami-{port}", daemon=True)
        self._reader.start()
        self.action("Login", Username=user, Secret=secret)

    def _read_banner(self) -> str:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                raise AmiError("AMI closed before its banner")
            data += chunk
        return data.decode().strip()

    def _read_loop(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    self._handle(raw.decode("utf-8", "replace"))
        except OSError:
            pass
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _handle(self, raw: str) -> None:
        msg: Event = {}
        for line in raw.split("\r\n"):
            key, sep, value = line.partition(": ")
            if not sep:
                key, sep, value = line.partition(":")
            if key in msg:  # repeated keys (ChanVariable, Output): keep them all, newline-joined
                msg[key] += "\n" + value
            else:
                msg[key] = value
        msg["_received"] = f"{time.monotonic():.6f}"
        with self._cond:
            if "Response" in msg and "ActionID" in msg:
                self._responses[msg["ActionID"]] = msg
            elif "Event" in msg:
                self.events.append(msg)
                if "Uniqueid" in msg:
                    self.by_uniqueid.setdefault(msg["Uniqueid"], []).append(msg)
            self._cond.notify_all()

    def send(self, action: str, fields: Iterable[tuple[str, str]] = ()) -> str:
        """Send an action without waiting; return its ActionID."""
        with self._cond:
            self._next_id += 1
            action_id = f"rig-{self._next_id}"
        lines = [f"Action: {action}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in fields)]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id

    def action(self, action: str, timeout: float = 10.0, check: bool = True, **fields: str) -> Event:
        """Send ``action`` and wait for its response; raise :class:`AmiError` on ``Response: Error``."""
        action_id = self.send(action, fields.items())
        with self._cond:
            if not self._cond.wait_for(lambda: action_id in self._responses or self._closed, timeout):
                raise AmiError(f"{action}: no response in {timeout} s")
            if action_id not in self._responses:
                raise AmiError(f"{action}: AMI connection closed")
            reply = self._responses.pop(action_id)
        if check and reply.get("Response") not in ("Success", "Goodbye", "Follows"):
            raise AmiError(f"{action} failed: {reply}")
        return reply

    def originate(
        self,
        channel: str,
        *,
        channel_id: str,
        other_channel_id: str | None = None,
        context: str | None = None,
        exten: str = "s",
        priority: str = "1",
        application: str | None = None,
        data: str = "",
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        timeout_ms: int = 30000,
    ) -> None:
        """Originate asynchronously; the call's events carry ``Linkedid: channel_id``."""
        fields: list[tuple[str, str]] = [("Channel", channel), ("ChannelId", channel_id), ("Async", "true")]
        fields.append(("Timeout", str(timeout_ms)))
        if other_channel_id:
            fields.append(("OtherChannelId", other_channel_id))
        if application is not None:
            fields += [("Application", application), ("Data", data)]
        else:
            if context is None:
                raise ValueError("originate needs an application or a context")
            fields += [("Context", context), ("Exten", exten), ("Priority", priority)]
        if caller_id is not None:
            fields.append(("CallerID", caller_id))
        for key, value in (variables or {}).items():
            fields.append(("Variable", f"{key}={value}"))
        action_id = self.send("Originate", fields)
        with self._cond:
            if not self._cond.wait_for(lambda: action_id in self._responses or self._closed, 10.0):
                raise AmiError("Originate: no response")
            reply = self._responses.pop(action_id, {})
        if reply.get("Response") != "Success":
            raise AmiError(f"Originate failed: {reply}")

    def send_dtmf(self, channel: str, digits: str, duration_ms: int = 120, gap: float = 0.2) -> None:
        """Play ``digits`` on ``channel`` (the caller's leg: for a Local call its ;1 half), one by one."""
        for i, digit in enumerate(digits):
            if i:
                time.sleep(gap)
            self.action("PlayDTMF", Channel=channel, Digit=digit, Duration=str(duration_ms))

    def call_events(self, linkedid: str) -> list[Event]:
        """Every event so far of the channels whose Linkedid (or Uniqueid) is ``linkedid``."""
        with self._cond:
            return [e for e in self.events if linkedid in (e.get("Linkedid"), e.get("Uniqueid"))]

    def channel_events(self, uniqueid: str) -> list[Event]:
        """Every event so far whose Uniqueid is ``uniqueid`` (one channel)."""
        with self._cond:
            return list(self.by_uniqueid.get(uniqueid, ()))

    def wait_for(
        self,
        predicate: Callable[[Event], bool],
        timeout: float = 10.0,
        uniqueid: str | None = None,
        since: int = 0,
    ) -> Event:
        """The first event (already received or to come) for which ``predicate`` holds (of one channel
        when ``uniqueid`` is given: much faster once thousands of events came; from the ``since``-th on)."""
        deadline = time.monotonic() + timeout
        seen = since
        with self._cond:
            while True:
                events = self.events if uniqueid is None else self.by_uniqueid.get(uniqueid, [])
                for event in events[seen:]:
                    if predicate(event):
                        return event
                seen = len(events)
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AmiError(f"no matching event in {timeout} s")
                self._cond.wait(left)

    def close(self) -> None:
        with contextlib.suppress(OSError, AmiError):
            self.action("Logoff", timeout=2.0, check=False)
        with contextlib.suppress(OSError):
            self.sock.close()


# ---------------------------------------------------------------- the instance


@dataclass
class AsteriskInstance:
    """One running Asterisk in the chroot; paths are host paths unless named ``*_in_root``."""

    root: Path
    name: str
    dir: Path  # host path of the instance dir (ROOT/tmp/hotline-rig-<name>-<pid>)
    ami_port: int
    sip_port: int
    ami_user: str
    ami_secret: str
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    boot_seconds: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    @property
    def dir_in_root(self) -> str:
        return "/" + str(self.dir.relative_to(self.root))

    @property
    def conf_in_root(self) -> str:
        return f"{self.dir_in_root}/etc/asterisk.conf"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """``asterisk -rx command`` against this instance; its output."""
        done = subprocess.run(
            ["chroot", str(self.root), ASTERISK, "-C", self.conf_in_root, "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return done.stdout + done.stderr

    def log_text(self, name: str = "messages.log") -> str:
        """Asterisk's own log: ``messages.log`` (notice, warning, error) or ``full.log`` (also verbose, dtmf)."""
        path = self.dir / "log" / name
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def console_text(self) -> str:
        path = self.dir / "console.out"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def cdr_rows(self) -> list[dict[str, str]]:
        """Asterisk's own CDR (cdr_custom, columns :data:`CDR_FIELDS`), one dict per record."""
        path = self.dir / "log" / "cdr-custom" / "Master.csv"
        if not path.exists():
            return []
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            return [dict(zip(CDR_FIELDS, row, strict=False)) for row in csv.reader(fh)]

    def queue_log_rows(self) -> list[list[str]]:
        """Asterisk's own queue_log: ``[time, callid, queue, agent, event, data1, ...]`` per line."""
        path = self.dir / "log" / "queue_log"
        if not path.exists():
            return []
        return [line.split("|") for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line]

    def ami(self) -> Ami:
        """A new AMI connection as the harness user."""
        return Ami(self.ami_port, self.ami_user, self.ami_secret)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, keep_dir: bool = False) -> None:
        """SIGTERM, then SIGKILL after 5 s; wait for the PID; remove the instance dir."""
        if self._stopped:
            return
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                # A killed Asterisk with hundreds of queues and a thread per channel can take seconds to be
                # torn down on a loaded machine; it cannot refuse, so this wait ends.
                self.proc.wait(60)
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _asterisk_conf(d: str, moddir: str) -> str:
    return (
        "[directories]\n"
        f"astetcdir => {d}/etc\n"
        f"astmoddir => {moddir}\n"
        f"astvarlibdir => {d}/lib\n"
        f"astdbdir => {d}/lib\n"
        f"astkeydir => {d}/lib\n"
        f"astdatadir => {d}/data\n"
        "astagidir => /usr/share/asterisk/agi-bin\n"
        f"astspooldir => {d}/spool\n"
        f"astrundir => {d}/run\n"
        f"astlogdir => {d}/log\n"
        "astsbindir => /usr/sbin\n"
        "[options]\n"
        "verbose = 3\n"  # full.log gets "Executing [...]" lines
        "maxload = 0\n"
        "transmit_silence = no\n"
        "hideconnect = yes\n"
    )


def _modules_conf(extra: Iterable[str] = ()) -> str:
    return "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in (*MODULES, *extra))


def _logger_conf() -> str:
    return (
        "[general]\n"
        "dateformat = %F %T.%3q\n"
        "queue_log = yes\n"
        "[logfiles]\n"
        "messages.log => notice,warning,error\n"
        "full.log => notice,warning,error,verbose,dtmf\n"
    )


def _manager_conf(port: int, user: str, secret: str, extra: str = "") -> str:
    return (
        "[general]\n"
        "enabled = yes\n"
        f"port = {port}\n"
        "bindaddr = 127.0.0.1\n"
        "timestampevents = yes\n"
        "displayconnects = no\n"
        f"[{user}]\n"
        f"secret = {secret}\n"
        "deny = 0.0.0.0/0.0.0.0\n"
        "permit = 127.0.0.1/255.255.255.255\n"
        "read = all\n"
        "write = all\n"
        "writetimeout = 5000\n" + extra
    )


def _pjsip_conf(port: int, extra: str) -> str:
    return f"[transport-udp]\ntype = transport\nprotocol = udp\nbind = 127.0.0.1:{port}\n\n" + extra + "\n"


def loop_transport(port: int, context: str) -> str:
    """pjsip.conf lines of a second UDP transport on ``port`` and a ``loop`` endpoint answering in ``context``:
    SIP endpoints whose contact is ``sip:NAME@127.0.0.1:<port>`` are this Asterisk itself, so a test gets PJSIP
    legs with real RTP timing and no external phone."""
    return f"""
[transport-loop]
type = transport
protocol = udp
bind = 127.0.0.1:{port}

[loop]
type = endpoint
context = {context}
disallow = all
allow = ulaw
direct_media = no

[loop]
type = identify
endpoint = loop
match = 127.0.0.1
"""


def _cdr_confs() -> tuple[str, str]:
    general = "[general]\nenable = yes\nunanswered = yes\ncongestion = yes\nbatch = no\n"
    return general, f"[mappings]\n{cdr.custom_mapping()}\n"


def _include(path: str) -> str:
    return f'#include "{path}"\n'


def start_asterisk(
    root: Path,
    *,
    name: str,
    generated_dir: Path,
    extra_extensions: str = "",
    extra_queues: str = "",
    pjsip: str = "",
    sounds: Mapping[str, bytes] | None = None,
    ami_user: str = "rig",
    ami_secret: str = "rigsecret",
    boot_timeout: float = 30.0,
    modules: Iterable[str] = (),
    manager_extra: str = "",
) -> AsteriskInstance:
    """Start Asterisk in ``root`` with the generated files of ``generated_dir`` included unchanged.

    ``sounds`` maps prompt ids to WAV bytes, installed as ``hotline/<id>.wav`` in this instance's
    sounds dir. ``extra_queues`` may add members to generated queues with ``[queue](+)`` sections.
    ``modules`` are loaded besides :data:`MODULES` (e.g. ``res_pjsip_endpoint_identifier_anonymous``
    for SIP callers that match no endpoint). ``manager_extra`` is appended to manager.conf (more AMI users).
    """
    missing = [f for f in GENERATED_FILES if not (generated_dir / f).exists()]
    if missing:
        raise FileNotFoundError(f"{generated_dir} lacks {', '.join(missing)} (render the dialplan first)")
    _remove_stale_dirs(root)
    inst_dir = root / "tmp" / f"hotline-rig-{name}-{os.getpid()}"
    shutil.rmtree(inst_dir, ignore_errors=True)
    for sub in ("etc", "generated", "lib", "log/cdr-custom", "run", "spool/outgoing", "data/sounds/hotline", "moh"):
        (inst_dir / sub).mkdir(parents=True, exist_ok=True)
    (inst_dir / OWNER_MARK).write_text(f"{__name__} {os.getpid()}\n", encoding="utf-8")
    d = "/" + str(inst_dir.relative_to(root))
    ami_port, sip_port = free_port(), free_port(socket.SOCK_DGRAM)

    # The data dir: the package's, with this instance's own sounds/hotline (symlinks resolve in the chroot).
    share = root / "usr/share/asterisk"
    for entry in share.iterdir():
        if entry.name != "sounds":
            (inst_dir / "data" / entry.name).symlink_to(f"/usr/share/asterisk/{entry.name}")
    for entry in (share / "sounds").iterdir():
        (inst_dir / "data/sounds" / entry.name).symlink_to(f"/usr/share/asterisk/sounds/{entry.name}")
    for prompt_id, data in (sounds or {}).items():
        (inst_dir / "data/sounds/hotline" / f"{prompt_id}.wav").write_bytes(data)
    (inst_dir / "moh" / "silence.wav").write_bytes(silent_wav(1.0))

    for f in GENERATED_FILES:  # byte for byte: the harness must test the files a site installs
        shutil.copyfile(generated_dir / f, inst_dir / "generated" / f)
    optional = [f for f in OPTIONAL_FILES if (generated_dir / f).exists()]
    for f in optional:
        shutil.copyfile(generated_dir / f, inst_dir / "generated" / f)
    gen = f"{d}/generated"
    stock = root / "etc/asterisk"
    cdr_conf, cdr_custom = _cdr_confs()
    # queues.conf: app_queue reads only the FIRST [general] section, and the generated file has its
    # own; a harness [general] before the #include would silently replace it.
    confs = {
        "asterisk.conf": _asterisk_conf(d, _module_dir(root)),
        "modules.conf": _modules_conf(modules),
        "logger.conf": _logger_conf(),
        "manager.conf": _manager_conf(ami_port, ami_user, ami_secret, manager_extra),
        "pjsip.conf": _pjsip_conf(sip_port, pjsip),
        "cdr.conf": cdr_conf,
        "cdr_custom.conf": cdr_custom,
        "musiconhold.conf": f"[general]\n[default]\nmode = files\ndirectory = {d}/moh\n",
        "extensions.conf": "[general]\nstatic = yes\nwriteprotect = yes\nclearglobalvars = no\n\n"
        + _include(f"{gen}/extensions.conf")
        + "\n; ---- harness contexts\n"
        + extra_extensions
        + "\n",
        "queues.conf": _include(f"{gen}/queues.conf") + "\n; ---- harness additions\n" + extra_queues + "\n",
        "features.conf": _include(f"{gen}/features.conf"),
        "confbridge.conf": _include(f"{gen}/confbridge.conf"),
        "http.conf": "[general]\nenabled = no\n",
        "rtp.conf": "[general]\nrtpstart = 20000\nrtpend = 30000\n",
        "indications.conf": (stock / "indications.conf").read_text(encoding="utf-8", errors="replace")
        if (stock / "indications.conf").exists()
        else "[general]\ncountry = us\n",
        "cli.conf": "[startup_commands]\n",
        "ccss.conf": "[general]\n",
        "acl.conf": "",
        "cel.conf": "[general]\nenable = no\n",
        "pjproject.conf": "",
        "queuerules.conf": _include(f"{gen}/queuerules.conf") if "queuerules.conf" in optional else "[general]\n",
        "udptl.conf": "[general]\n",
    }
    for fname, text in confs.items():
        (inst_dir / "etc" / fname).write_text(text, encoding="utf-8")

    inst = AsteriskInstance(
        root=root,
        name=name,
        dir=inst_dir,
        ami_port=ami_port,
        sip_port=sip_port,
        ami_user=ami_user,
        ami_secret=ami_secret,
    )
    out = (inst_dir / "console.out").open("wb")
    inst.started = time.monotonic()
    inst.proc = subprocess.Popen(
        ["chroot", str(root), ASTERISK, "-f", "-C", f"{d}/etc/asterisk.conf"],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    out.close()
    try:
        _wait_booted(inst, boot_timeout)
    except BaseException:
        inst.stop(keep_dir=True)
        raise
    inst.boot_seconds = time.monotonic() - inst.started
    return inst


def _remove_stale_dirs(root: Path) -> None:
    """Instance dirs this module made for test processes that were killed (their Asterisk died with them).

    Only dirs with this module's marker whose owner is gone: other tools' dirs are left alone."""
    for path in (root / "tmp").glob("hotline-rig-*-*"):
        try:
            owner = (path / OWNER_MARK).read_text(encoding="utf-8").split()
        except OSError:
            continue
        if len(owner) == 2 and owner[0] == __name__ and owner[1].isdigit() and not Path(f"/proc/{owner[1]}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies (chroot execs asterisk in place,
    so the setting stays), so a killed test run leaves no Asterisk behind."""
    if _LIBC is not None:  # resolved before the fork: no dlopen in the child
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_booted(inst: AsteriskInstance, timeout: float) -> None:
    """Until AMI answers a login and Asterisk reports FullyBooted."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not inst.running():
            raise RigUnavailable(
                f"Asterisk exited with {inst.proc.returncode if inst.proc else '?'} while booting; "
                f"console:\n{inst.console_text()[-2000:]}\nlog:\n{inst.log_text()[-2000:]}"
            )
        try:
            ami = inst.ami()
        except (OSError, AmiError) as exc:
            last = exc
            time.sleep(0.1)
            continue
        try:
            ami.wait_for(lambda e: e.get("Event") == "FullyBooted", max(0.1, deadline - time.monotonic()))
            return
        except AmiError as exc:
            last = exc
        finally:
            ami.close()
    raise RigUnavailable(
        f"Asterisk did not boot in {timeout} s (last AMI error: {last}); log:\n{inst.log_text()[-2000:]}"
    )


# ---------------------------------------------------------------- the controller beside it


class ControllerThread:
    """The in-process FastAGI controller on its own event loop thread, with a settable clock.

    ``now`` is the time the controller routes at (tests set it per call); ``close()`` stops
    listening (connections are then refused) and ``listen()`` listens again on the same port.
    """

    def __init__(self, config_path: Path, now: dt.datetime) -> None:
        self.now = now
        self.server = FastAgiServer(ConfigHolder(config_path), clock=lambda: self.now)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fastagi", daemon=True)
        self.thread.start()
        self.port = 0

    def listen(self, port: int = 0) -> int:
        self.port = asyncio.run_coroutine_threadsafe(self.server.start("127.0.0.1", port), self.loop).result(10)
        return self.port

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
