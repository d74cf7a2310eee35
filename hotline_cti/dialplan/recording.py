"""Call recording (通话录音) in the generated files: which queues record, and the file each call records to.

app_queue does the recording: a queue with ``monitor-format`` starts MixMonitor on the *caller's* channel
when a member answers (``apps/app_queue.c`` ``setup_mixmonitor``, option ``b``: only while bridged). The
caller's channel is the one leg every transfer keeps (blind and attended move the agent side, three-way
moves the caller into a ConfBridge, which is a bridge too), so one file holds the whole conversation.
The file name comes from ``MONITOR_FILENAME`` on the caller's channel, set by ``[hotline-record]`` just
before ``Queue()``: the call id and the time, never the caller's number.
"""

from __future__ import annotations

from hotline_cti import channel_vars as cv
from hotline_cti.config.schema import MergerConfig

CTX_RECORD = "hotline-record"  # Gosub before Queue(): MONITOR_FILENAME and the HotlineRecording event
# What MixMonitor makes of app_queue's "<name>.<monitor-format>" (wav49 is written as .WAV).
EXTENSIONS = {"wav": "wav", "gsm": "gsm", "wav49": "WAV"}
DAY_DIR = "${STRFTIME(${EPOCH},UTC,%Y%m%d)}"  # one directory per UTC day keeps directories small


def queue_records(cfg: MergerConfig, queue_id: str) -> bool:
    """Whether a 12345 queue (by its id in the merger file) records its answered calls."""
    return cfg.recording.queues.get(queue_id, cfg.recording.enabled)


def expert_queue_records(cfg: MergerConfig, group_id: str) -> bool:
    """Whether an expert-seat group's queues record their answered calls."""
    return cfg.recording.expert_groups.get(group_id, cfg.recording.enabled)


def monitor_lines(cfg: MergerConfig, records: bool) -> list[str]:
    """queues.conf lines of a queue: ``monitor-format`` when it records, nothing otherwise."""
    return [f"monitor-format={cfg.recording.format}"] if records else []


def file_extension(cfg: MergerConfig) -> str:
    return EXTENSIONS[cfg.recording.format]


def record_context(cfg: MergerConfig) -> str:
    """``[hotline-record]``: ``Gosub(hotline-record,s,1)`` names this channel's recording once per call;
    ``Gosub(hotline-record,s,1(-t<code>))`` names a new one for a leg moved to a target's queue (a second
    MixMonitor on one file would overwrite it).

    The ``HotlineRecording`` event tells the record builder the file; it is kept only once Asterisk's own
    ``MixMonitorStart`` for the same channel says the recording began (a queue that does not record, or a
    caller who hangs up before an answer, has no recording).
    """
    name = f"{cfg.recording.dir}/{DAY_DIR}/${{FILTER(0-9A-Za-z._,${{{cv.CALL_ID}}})}}-${{EPOCH}}${{ARG1}}"
    event = (
        f"UserEvent({cv.EVENT_RECORDING},CallId: ${{{cv.CALL_ID}}},Leg: ${{UNIQUEID}},"
        f"File: ${{MONITOR_FILENAME}}.{file_extension(cfg)})"
    )
    return (
        "\n".join(
            [
                "; names the caller's recording before Queue(): call id and time, never the caller's number",
                f"[{CTX_RECORD}]",
                'exten => s,1,GotoIf($["${ARG1}" != ""]?name)',
                ' same => n,GotoIf($["${MONITOR_FILENAME}" != ""]?done)',
                f" same => n(name),Set(MONITOR_FILENAME={name})",
                f" same => n,{event}",
                " same => n(done),Return()",
            ]
        )
        + "\n"
    )


def gosub(suffix: str = "") -> str:
    """The dialplan step that names the recording (``suffix`` for a transferred leg's own file)."""
    return f"Gosub({CTX_RECORD},s,1({suffix}))" if suffix else f"Gosub({CTX_RECORD},s,1)"


def recordings_root(cfg: MergerConfig) -> str:
    """The recordings directory as an absolute path (a relative ``dir`` is under Asterisk's monitor dir)."""
    rec = cfg.recording
    return rec.dir if rec.dir.startswith("/") else f"{rec.monitor_dir}/{rec.dir}"


def absolute(cfg: MergerConfig, path: str) -> str:
    """A recording's path as the call record has it (what Asterisk was told) made absolute."""
    return path if path.startswith("/") else f"{cfg.recording.monitor_dir}/{path}"
