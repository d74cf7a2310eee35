"""The AMI parser: CPU per event on Asterisk's busy hour and on hostile streams, against line-by-line reading.

``python -m benchmarks.ami_bench [--rounds 5]`` (about 30 s). The input is what ``records_bench`` replays: the
simulated PBX over Guangxi's busiest hour of the busy day, every AMI event encoded as Asterisk writes it, fed in
32 KiB reads. The baseline, measured in the same run, is the same parser with its whole-message reading turned off
(every line read on its own, as before it had one). The hostile streams (each 256 KiB, also in 32 KiB reads) are
what a broken or hostile peer could send: their figures must stay linear, never quadratic, in the read's length.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from hotline_cti.adapters.ami.protocol import AmiParser, ParsedItem

READ = 32 * 1024  # bytes handed to the parser at a time, as records_bench's replay
HOSTILE_BYTES = 256 * 1024


class LineByLineParser(AmiParser):
    """The parser with its whole-message reading turned off: the baseline."""

    def _whole_messages(self, buf: bytearray, pos: int, out: list[ParsedItem]) -> int:
        return pos


def hostile_streams() -> dict[str, bytes]:
    """Streams a peer could send that no Asterisk does, each about HOSTILE_BYTES long."""

    def fill(unit: bytes) -> bytes:
        return unit * (HOSTILE_BYTES // len(unit))

    return {
        "LF blank lines": fill(b"\n"),
        "CRLF blank lines": fill(b"\r\n"),
        "tiny LF-only messages": fill(b"Event: X\n\n"),
        "headers, no blank line": fill(b"Event: X\r\n"),
        "one line, no newline": fill(b"A"),
        "lines without a colon": fill(b"garbage\r\n\r\n"),
    }


@dataclass(frozen=True)
class Figure:
    name: str
    items: int
    ours_s: float  # median seconds of CPU for the whole stream
    baseline_s: float


def parse_seconds(make: Callable[[], AmiParser], data: bytes) -> tuple[float, int]:
    """Thread CPU seconds to feed ``data`` in READ-sized reads to a new parser, and the items it made."""
    parser = make()
    items = 0
    started = time.thread_time()
    for i in range(0, len(data), READ):
        items += len(parser.feed(data[i : i + READ]))
    return time.thread_time() - started, items


def measure(name: str, data: bytes, rounds: int, *, banner: bool) -> Figure:
    """Both parsers over ``data``, interleaved ``rounds`` times; medians."""
    ours: list[float] = []
    base: list[float] = []
    counts: set[int] = set()
    for _ in range(rounds):
        for kind, into in ((AmiParser, ours), (LineByLineParser, base)):
            make = functools.partial(kind, expect_banner=banner)
            seconds, items = parse_seconds(make, data)
            into.append(seconds)
            counts.add(items)
    if len(counts) != 1:
        raise AssertionError(f"{name}: the two parsers made different numbers of items: {sorted(counts)}")
    return Figure(name, counts.pop(), statistics.median(ours), statistics.median(base))


def busy_hour_stream() -> tuple[bytes, int]:
    """records_bench's replay as one byte stream after Asterisk's banner, and its event count."""
    from benchmarks.records_bench import busy_hour  # the simulated PBX: imported only when run

    replay = busy_hour()
    return b"Asterisk Call Manager/7.0.3\r\n" + b"".join(replay.chunks), replay.events


def report(figures: list[Figure], out: Callable[[str], None] = print) -> None:
    out(f"{'stream':28s} {'items':>7s} {'ours ms':>9s} {'line-by-line ms':>16s} {'ours/baseline':>14s} {'us/item':>8s}")
    for f in figures:
        per_item = f"{f.ours_s / f.items * 1e6:8.2f}" if f.items else f"{'-':>8s}"
        out(
            f"{f.name:28s} {f.items:7d} {f.ours_s * 1000:9.1f} {f.baseline_s * 1000:16.1f}"
            f" {f.ours_s / f.baseline_s:13.2f}x {per_item}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ami_bench", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per stream; medians (default 5)")
    args = p.parse_args(argv)
    stream, events = busy_hour_stream()
    figures = [measure(f"busy hour ({events:,} events)", stream, args.rounds, banner=True)]
    figures += [measure(name, data, args.rounds, banner=False) for name, data in hostile_streams().items()]
    report(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
