"""Recording settings (merger YAML ``recording``), the queues that record, and the call record's file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.dialplan.queues import render_queues
from hotline_cti.dialplan.recording import record_context, recordings_root
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord
from tests.conftest import SMALL_YAML

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "cfg.yaml"
    path.write_text(SMALL_YAML + extra, encoding="utf-8")
    return load_config(path).model


def queue_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("["):
            name = line.strip("[]")
            blocks[name] = []
        elif name:
            blocks[name].append(line)
    return blocks


def test_every_queue_records_by_default(small_config_path: Path) -> None:
    cfg = load_config(small_config_path).model
    assert cfg.recording.enabled and cfg.recording.retention_days == 180
    # under Asterisk's own monitor dir (astspooldir/monitor): MixMonitor makes a relative name absolute there
    assert recordings_root(cfg) == "/var/spool/asterisk/monitor/hotline"
    assert "Set(MONITOR_FILENAME=hotline/${STRFTIME(" in record_context(cfg)
    blocks = queue_blocks(render_queues(cfg))
    queues = [n for n in blocks if n != "general"]
    assert queues and all("monitor-format=wav" in blocks[n] for n in queues)
    assert "monitor-format=wav" not in blocks["general"]  # app_queue's [general]: no queue of its own


def test_single_queues_and_expert_groups_are_turned_off_or_on(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "recording:\n  enabled: false\n  format: gsm\n  dir: /srv/rec/\n"
        "  queues: {complaint: true}\n  expert_groups: {e12315: true}\n",
    )
    blocks = queue_blocks(render_queues(cfg))  # type: ignore[arg-type]
    recording = sorted(n for n, lines in blocks.items() if "monitor-format=gsm" in lines)
    assert recording == ["guilin-complaint", "guilin-expert-e12315", "gx-complaint", "gx-expert-e12315"]
    assert not any("monitor-format=wav" in lines for lines in blocks.values())
    context = record_context(cfg)  # type: ignore[arg-type]
    assert "Set(MONITOR_FILENAME=/srv/rec/${STRFTIME(${EPOCH},UTC,%Y%m%d)}/" in context  # trailing '/' dropped
    assert "File: ${MONITOR_FILENAME}.gsm)" in context


def test_wav49_is_announced_as_the_file_mixmonitor_writes(tmp_path: Path) -> None:
    cfg = load(tmp_path, "recording: {format: wav49}\n")
    assert "File: ${MONITOR_FILENAME}.WAV)" in record_context(cfg)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("queues: {nosuch: false}", "recording.queues.nosuch: unknown queue 'nosuch'"),
        ("expert_groups: {e99: true}", "recording.expert_groups.e99: unknown expert group 'e99'"),
        ("monitor_dir: spool/monitor", "is not an absolute path"),
        ("dir: /var/rec/../../etc", "is not a recordings directory"),
        ("dir: '/var/rec,1)'", "is not a recordings directory"),
        ("dir: '/var/${EVIL}'", "is not a recordings directory"),
        ("retention_days: 0", "retention_days"),
        ("format: mp3", "format"),
    ],
)
def test_bad_recording_settings_are_named_with_their_line(tmp_path: Path, setting: str, message: str) -> None:
    path = tmp_path / "cfg.yaml"
    text = SMALL_YAML + f"recording:\n  {setting}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [str(p) for p in info.value.problems]
    line = len(text.splitlines())
    assert any(message in p and f"cfg.yaml:{line}:" in p for p in found), found


def _feed(builder: RecordBuilder, *events: dict[str, str]) -> list[CallRecord]:
    out: list[CallRecord] = []
    for i, e in enumerate(events):
        out += [o for o in builder.feed(e, T0 + dt.timedelta(seconds=i)) if isinstance(o, CallRecord)]
    return out


def _chan(uid: str, **kw: str) -> dict[str, str]:
    return {"Uniqueid": uid, "Linkedid": "1700000000.1", "Channel": "PJSIP/trunk-1", "CallerIDNum": "13812345678"} | kw


FILE = "/var/spool/asterisk/monitor/hotline/20260301/1700000000.1-1772352000.wav"
NAMED = {"Event": "UserEvent", "UserEvent": "HotlineRecording", "CallId": "1700000000.1", "Leg": "1700000000.1"}


def test_the_record_names_the_file_once_asterisk_started_recording() -> None:
    builder = RecordBuilder("gx")
    (record,) = _feed(
        builder,
        {"Event": "Newchannel", **_chan("1700000000.1", Exten="12345")},
        {**NAMED, "File": FILE},
        {"Event": "MixMonitorStart", **_chan("1700000000.1")},
        # a leg moved to a target's queue records a second file: the record keeps the first
        {**NAMED, "Leg": "1700000000.1", "File": FILE.replace(".wav", "-t9001.wav")},
        {"Event": "MixMonitorStart", **_chan("1700000000.1")},
        {"Event": "Hangup", **_chan("1700000000.1"), "Cause": "16"},
    )
    assert (record.recording_path, record.recording_file) == (FILE, "1700000000.1-1772352000.wav")


def test_a_named_file_that_never_started_is_no_recording() -> None:
    # A queue without monitor-format, or a caller who hung up before any answer.
    builder = RecordBuilder("gx")
    (record,) = _feed(
        builder,
        {"Event": "Newchannel", **_chan("1700000000.1", Exten="12345")},
        {**NAMED, "File": FILE},
        {"Event": "MixMonitorStart", **_chan("1700000000.9")},  # another call's channel
        {"Event": "Hangup", **_chan("1700000000.1"), "Cause": "16"},
    )
    assert (record.recording_path, record.recording_file) == ("", "")


def test_a_recording_event_without_its_file_is_skipped_as_malformed() -> None:
    builder = RecordBuilder("gx")
    _feed(builder, {"Event": "Newchannel", **_chan("1700000000.1", Exten="12345")}, NAMED)
    assert builder.skipped == 1
