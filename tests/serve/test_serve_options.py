"""serve's spool and lease options: parsed, checked, and handed to the child services unchanged."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from hotline_cti.serve import options


def parse(*argv: str) -> argparse.Namespace:
    return options.parser("serve").parse_args(["--config", "c.yaml", *argv])


def test_spool_and_lease_defaults_and_round_trip() -> None:
    args = parse()
    assert args.spool_dir == Path("hotline-cti-spool") and args.spool_max_bytes == 256 * 1024**2
    assert options.link_id(args) == "no-ami@127.0.0.1:4573"
    args = parse("--ami", "10.0.0.5", "--spool-dir", "/var/spool/h", "--spool-max-bytes", "512M", "--node-id", "n1")
    assert options.link_id(args) == "10.0.0.5:5038"
    again = options.parser("events").parse_args(options.to_argv(args))
    assert vars(again) == vars(args)
    assert options.link_id(parse("--ami", "10.0.0.5", "--link-id", "pbx-nanning")) == "pbx-nanning"
    args = parse("--ami", "10.0.0.5", "--cdr-csv", "/var/log/asterisk/cdr-custom/Master.csv")
    assert options.parser("events").parse_args(options.to_argv(args)).cdr_csv == args.cdr_csv


@pytest.mark.parametrize("size, expected", [("2048", 2048), ("64K", 65536), ("1g", 1024**3), ("10MB", 10 * 1024**2)])
def test_sizes(size: str, expected: int) -> None:
    assert parse("--spool-max-bytes", size).spool_max_bytes == expected


@pytest.mark.parametrize("size", ["", "12", "M", "-5M", "1.5G", "lots"])
def test_bad_sizes_are_refused(size: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--spool-max-bytes", size)
    assert "--spool-max-bytes" in capsys.readouterr().err


def test_routing_options_round_trip_to_the_children() -> None:
    args = parse(
        "--clock-start", "2021-09-01T10:00+08:00", "--stall-limit", "0.5", "--status-file", "/run/h/status.json"
    )
    args = parse(*options.to_argv(args)[2:])  # what a child service parses back
    assert args.clock_start.isoformat() == "2021-09-01T10:00:00+08:00"
    assert args.stall_limit == 0.5 and args.status_file == Path("/run/h/status.json")
    assert args.session_deadline == 10.0 and args.command_timeout == 3.0


def test_the_clock_starts_at_clock_start_and_runs_on() -> None:
    assert options.clock(parse()) is None  # the real clock
    clock = options.clock(parse("--clock-start", "2021-09-01T10:00+08:00"))
    assert clock is not None
    first, second = clock(), clock()  # POSIX seconds, as the FastAGI server reads its clock
    start = dt.datetime.fromisoformat("2021-09-01T10:00+08:00").timestamp()
    assert start <= first <= second < start + 10


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--clock-start", "2021-09-01T10:00", "no UTC offset"),
        ("--clock-start", "yesterday", "not an ISO 8601 time"),
        ("--clock-start", "", "not an ISO 8601 time"),
        ("--stall-limit", "0", "between 0 and 3600"),
        ("--stall-limit", "-1", "between 0 and 3600"),
        ("--stall-limit", "nan", "between 0 and 3600"),
        ("--stall-limit", "1e9", "between 0 and 3600"),
        ("--session-deadline", "soon", "not a number of seconds"),
        ("--command-timeout", "inf", "between 0 and 3600"),
        ("--listen", "127.0.0.1:99999", "is not HOST:PORT"),
    ],
)
def test_bad_routing_options_are_refused_naming_the_flag(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(flag, value)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and flag in err and says in err
