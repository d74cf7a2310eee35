"""Call recording on a real Asterisk 22 running the generated Guangxi dialplan unchanged.

The caller is a Local channel whose far half plays a 440 Hz tone; the agent is a Local queue member
playing 1000 Hz; a second Local member of the expert-seat queue (the blind transfer's target, code 9001)
plays 1800 Hz. What the recording holds is measured in the file Asterisk wrote (Goertzel power at each
tone against a frequency nobody plays), and the call record is the one :class:`RecordBuilder` builds from
Asterisk's own events (HotlineRecording, MixMonitorStart).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig, Recording
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.dialplan import names
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord
from simulators.asterisk import (
    Ami,
    AsteriskInstance,
    ControllerThread,
    free_port,
    loop_transport,
    silent_prompts,
    start_asterisk,
    wait_until,
)
from tests.paths import REPO

CONFIG = REPO / "merger_config" / "guangxi.yaml"
CLI = REPO / ".venv" / "bin" / "hotline-cti"
NUMBER = "12300"  # at the rig's time a transition line: a short prompt, then a queue (no menu)
CALLER_NUMBER = "07735551234"
CALLER_TONE, AGENT_TONE, EXPERT_TONE, NOBODY = 440.0, 1000.0, 1800.0, 2600.0

HARNESS = f"""
[rig-caller]
exten => tone,1,Playtones({int(CALLER_TONE)})
 same => n,Wait(60)
 same => n,Hangup()

[rig-agent]
exten => lagent,1,Answer()
 same => n,Playtones({int(AGENT_TONE)})
 same => n,Wait(60)
 same => n,Hangup()
exten => lexpert,1,Answer()
 same => n,Playtones({int(EXPERT_TONE)})
 same => n,Wait(60)
 same => n,Hangup()

[rig-seat]
; a sub-centre's seat behind the pstn trunk (a SIP call to this Asterisk itself): answers with the same tone
exten => _X.,1,Answer()
 same => n,Playtones({int(EXPERT_TONE)})
 same => n,Wait(60)
 same => n,Hangup()
"""


def _pjsip(loop_port: int) -> str:
    """The ``pstn`` trunk whose contact is this Asterisk itself (a second transport), answered in ``rig-seat``."""
    return (
        loop_transport(loop_port, "rig-seat")
        + f"""
[pstn]
type = endpoint
context = hotline-inbound
disallow = all
allow = ulaw
direct_media = no
aors = pstn

[pstn]
type = aor
contact = sip:pstn@127.0.0.1:{loop_port}
"""
    )


@dataclass
class Rig:
    pbx: AsteriskInstance
    ami: Ami
    cfg: MergerConfig
    host_dir: Path  # the recordings dir as this process sees it (inside the chroot for Asterisk)
    asterisk_dir: str


@pytest.fixture(scope="module")
def rig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    base = load_config(CONFIG).model
    asterisk_dir = f"/tmp/hotline-recordings-{os.getpid()}"
    cfg = base.model_copy(update={"recording": Recording(dir=asterisk_dir)})
    table = compile_config(cfg)
    now = dt.datetime(2021, 9, 15, 10, tzinfo=table.timezone)
    queue = decide(Call(NUMBER, caller=CALLER_NUMBER), table, now).target
    assert queue is not None
    controller = ControllerThread(CONFIG, now)
    port = controller.listen()
    out = tmp_path_factory.mktemp("recording") / "dialplan"
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
    sounds = silent_prompts(cfg)
    members = f"\n[{queue}](+)\nmember => Local/lagent@rig-agent/n,0,lagent\n"
    for centre in cfg.centres:  # the blind transfer's target: the expert seats at the call's centre
        members += (
            f"\n[{names.expert_queue_name(centre.id, 'e12315')}](+)\nmember => Local/lexpert@rig-agent/n,0,lexpert\n"
        )
    host_dir = asterisk_root / asterisk_dir.lstrip("/")
    shutil.rmtree(host_dir, ignore_errors=True)
    pbx = start_asterisk(
        asterisk_root,
        name="recording",
        generated_dir=out,
        extra_extensions=HARNESS,
        extra_queues=members,
        pjsip=_pjsip(free_port(socket.SOCK_DGRAM)),
        sounds=sounds,
    )
    ami = pbx.ami()
    try:
        yield Rig(pbx, ami, cfg, host_dir, asterisk_dir)
    finally:
        ami.close()
        pbx.stop(keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
        controller.shutdown()
        shutil.rmtree(host_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean(rig: Rig) -> Iterator[None]:
    yield
    rig.pbx.cli("channel request hangup all")
    wait_until(lambda: "0 active channels" in rig.pbx.cli("core show channels count"), 15, "all channels gone")


def tone_power(path: Path, start: float, end: float, freq: float) -> float:
    """Mean Goertzel power of ``freq`` in seconds [start, end) of a 16-bit mono WAV, per sample."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2), path
        rate = w.getframerate()
        w.setpos(int(start * rate))
        raw = w.readframes(int((end - start) * rate))
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    assert samples, f"{path} has no audio between {start} and {end} s"
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / len(samples) ** 2


def duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def records(rig: Rig, since: int) -> dict[str, CallRecord]:
    builder = RecordBuilder("gx")
    out: dict[str, CallRecord] = {}
    for e in list(rig.ami.events)[since:]:
        for item in builder.feed(e):
            if isinstance(item, CallRecord):
                out[item.call_id] = item
    for snap in builder.snapshot():
        out[snap.call_id] = snap
    return out


def answered(rig: Rig) -> tuple[str, str, str, str, int]:
    """A Local caller (440 Hz) answered by the Local agent (1000 Hz).

    (the call record's id, HOTLINE_CALL_ID (the Local half that ran the dialplan), agent leg, file, event index).
    """
    since = len(rig.ami.events)
    record_id = f"rec{uuid.uuid4().hex[:10]}"
    rig.ami.originate(
        f"Local/{NUMBER}@hotline-inbound",
        channel_id=record_id,
        other_channel_id=f"{record_id}-2",
        context="rig-caller",
        exten="tone",
        caller_id=f'"rig" <{CALLER_NUMBER}>',
    )
    named = rig.ami.wait_for(
        lambda e: e.get("UserEvent") == "HotlineRecording" and e.get("Linkedid") == record_id, 20.0, since=since
    )
    call_id = named["CallId"]
    connect = rig.ami.wait_for(
        lambda e: e.get("Event") == "AgentConnect" and e.get("Uniqueid") == call_id, 20.0, since=since
    )
    rig.ami.wait_for(lambda e: e.get("Event") == "MixMonitorStart" and e.get("Uniqueid") == call_id, 20.0, since=since)
    return record_id, call_id, connect["DestChannel"], named["File"], since


def finished(path: Path, seconds: float) -> None:
    """Wait until Asterisk has closed ``path`` with at least ``seconds`` of audio in its header."""

    def ok() -> bool:
        try:
            return duration(path) >= seconds
        except (OSError, EOFError, wave.Error):
            return False

    wait_until(ok, 20, f"{path} closed with {seconds} s of audio")


def test_an_answered_call_is_recorded_with_both_sides_under_its_call_id(rig: Rig) -> None:
    record_id, call_id, _agent, file, since = answered(rig)
    # The name: the configured dir, the UTC day, the call id and the time; never the caller's number.
    day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    safe_id = re.sub(r"[^0-9A-Za-z._]", "", call_id)  # the dialplan FILTERs the id (Asterisk's own: digits and '.')
    assert re.fullmatch(rf"{re.escape(rig.asterisk_dir)}/{day}/{re.escape(safe_id)}-\d{{10}}\.wav", file), file
    assert CALLER_NUMBER not in file and "5551234" not in file
    time.sleep(3)
    rig.ami.action("Hangup", Channel=f"/^Local/{NUMBER}@hotline-inbound-.*;1$/")
    # MixMonitorStop comes only from StopMixMonitor: the caller's hang-up ends the recording.
    rig.ami.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == call_id, 20.0, since=since)
    path = rig.host_dir / file.removeprefix(rig.asterisk_dir + "/")
    finished(path, 2.0)
    length = duration(path)
    caller, agent = tone_power(path, 0.5, length, CALLER_TONE), tone_power(path, 0.5, length, AGENT_TONE)
    nobody = tone_power(path, 0.5, length, NOBODY)
    assert caller > 100 * nobody and agent > 100 * nobody, (caller, agent, nobody)
    # The call record names the file, once Asterisk said the recording began.
    record = records(rig, since)[record_id]
    assert (record.recording_path, record.recording_file) == (file, file.rsplit("/", 1)[-1])
    assert record.agent == "lagent"


def test_the_recording_goes_on_through_a_blind_transfer(rig: Rig) -> None:
    record_id, call_id, agent, file, since = answered(rig)
    time.sleep(2)
    mark = len(rig.ami.events)
    # The Local agent's ;1 half is bridged with the caller: the caller's own channel is what moves.
    rig.ami.action("BlindTransfer", Channel=agent, Context=names.CTX_XFER_OUT, Exten="9001")
    rig.ami.wait_for(lambda e: e.get("Event") == "BlindTransfer" and e.get("Result") == "Success", 20.0, since=mark)
    rig.ami.wait_for(lambda e: e.get("Event") == "AgentConnect" and e.get("MemberName") == "lexpert", 20.0, since=mark)
    time.sleep(3)
    rig.ami.action("Hangup", Channel=f"/^Local/{NUMBER}@hotline-inbound-.*;1$/")
    rig.ami.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == call_id, 20.0, since=since)
    path = rig.host_dir / file.removeprefix(rig.asterisk_dir + "/")
    finished(path, 4.0)
    length = duration(path)
    nobody = tone_power(path, 0.5, length, NOBODY)
    expert = tone_power(path, 0.5, length, EXPERT_TONE)
    agent_part = tone_power(path, 0.5, length, AGENT_TONE)
    caller = tone_power(path, 0.5, length, CALLER_TONE)
    # One file: the agent before the transfer, the expert seat after it, the caller throughout.
    assert min(expert, agent_part, caller) > 100 * nobody, (expert, agent_part, caller, nobody)
    record = records(rig, since)[record_id]
    assert record.recording_path == file and record.transfers == ["9001"]
    # The transferred leg's own queue recorded a second file, named for the target; the record keeps the first.
    second = [
        e["File"]
        for e in list(rig.ami.events)[since:]
        if e.get("UserEvent") == "HotlineRecording" and e.get("CallId") == call_id and e["File"] != file
    ]
    assert len(second) == 1 and re.search(r"-\d{10}-t9001\.wav$", second[0]), second


@pytest.mark.parametrize(("mode", "target"), [("attended", "9001"), ("threeway", "8001")])
def test_the_recording_goes_on_through_attended_and_threeway_transfers(
    rig: Rig, mode: str, target: str, tmp_path: Path
) -> None:
    """Attended (the agent consults the expert seats, then hangs up) and three-way (caller, agent and the
    customs sub-centre's seat in a ConfBridge), both asked with ``hotline-cti transfer``: the caller's one
    file goes on and holds the target (both play 1800 Hz)."""
    _record_id, call_id, agent, file, since = answered(rig)
    time.sleep(2)
    mark = len(rig.ami.events)
    env = {
        **os.environ,
        "HOTLINE_AMI_HOST": "127.0.0.1",
        "HOTLINE_AMI_PORT": str(rig.pbx.ami_port),
        "HOTLINE_AMI_USER": rig.pbx.ami_user,
        "HOTLINE_AMI_SECRET": rig.pbx.ami_secret,
    }
    args = [str(CLI), "transfer", agent, "--to", target, "--mode", mode, "--config", str(CONFIG)]
    args += ["--database", f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", "--json"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if mode == "attended":
        rig.ami.wait_for(
            lambda e: e.get("Event") == "AgentConnect" and e.get("MemberName") == "lexpert", 30, since=mark
        )
        time.sleep(1)
        rig.ami.action("Hangup", Channel=agent)  # the agent completes the transfer
        done = rig.ami.wait_for(lambda e: e.get("Event") == "AttendedTransfer", 20.0, since=mark)
        assert done["Result"] == "Success"
    else:
        rig.ami.wait_for(
            lambda e: e.get("Event") == "ConfbridgeJoin" and e.get("Uniqueid") == call_id, 20.0, since=mark
        )
        rig.ami.wait_for(
            lambda e: e.get("Event") == "ConfbridgeJoin" and e["Channel"].startswith("Local/8001@"), 20.0, since=mark
        )
    out, err = proc.communicate(timeout=60)
    assert json.loads(out)["result"] == "ok", (out, err)
    time.sleep(3)
    rig.ami.action("Hangup", Channel=f"/^Local/{NUMBER}@hotline-inbound-.*;1$/")
    rig.ami.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == call_id, 20.0, since=since)
    path = rig.host_dir / file.removeprefix(rig.asterisk_dir + "/")
    finished(path, 5.0)
    length = duration(path)
    nobody = tone_power(path, 0.5, length, NOBODY)
    powers = {f: tone_power(path, 0.5, length, f) for f in (CALLER_TONE, AGENT_TONE, EXPERT_TONE)}
    assert min(powers.values()) > 100 * nobody, (powers, nobody)
    # the expert seats were recorded after the transfer: in the last seconds of the file
    assert tone_power(path, length - 2.0, length, EXPERT_TONE) > 100 * nobody
