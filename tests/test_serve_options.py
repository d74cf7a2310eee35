"""serve's spool and lease options: parsed, checked, and handed to the child services unchanged."""

from __future__ import annotations

import argparse
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


@pytest.mark.parametrize("size, expected", [("2048", 2048), ("64K", 65536), ("1g", 1024**3), ("10MB", 10 * 1024**2)])
def test_sizes(size: str, expected: int) -> None:
    assert parse("--spool-max-bytes", size).spool_max_bytes == expected


@pytest.mark.parametrize("size", ["", "12", "M", "-5M", "1.5G", "lots"])
def test_bad_sizes_are_refused(size: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--spool-max-bytes", size)
    assert "--spool-max-bytes" in capsys.readouterr().err
