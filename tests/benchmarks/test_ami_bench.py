"""ami_bench: both parsers make the same items of every hostile stream, and the report names each stream."""

from __future__ import annotations

from benchmarks.ami_bench import HOSTILE_BYTES, Figure, LineByLineParser, hostile_streams, measure, report
from hotline_cti.adapters.ami.protocol import AmiParser, Malformed, Message


def test_every_hostile_stream_is_full_size_and_parses_alike_both_ways() -> None:
    streams = hostile_streams()
    assert len(streams) >= 6
    for name, data in streams.items():
        assert HOSTILE_BYTES - 16 <= len(data) <= HOSTILE_BYTES, name
        figure = measure(name, data, 1, banner=False)  # raises if the two parsers disagree on the count
        assert figure.items == len(AmiParser(expect_banner=False).feed(data))
        assert AmiParser(expect_banner=False).feed(data) == LineByLineParser(expect_banner=False).feed(data)


def test_the_hostile_streams_make_what_they_are_named_for() -> None:
    streams = hostile_streams()
    tiny = AmiParser(expect_banner=False).feed(streams["tiny LF-only messages"])
    assert tiny and all(isinstance(item, Message) and item["Event"] == "X" for item in tiny)
    garbage = AmiParser(expect_banner=False).feed(streams["lines without a colon"])
    assert garbage and all(isinstance(item, Malformed) for item in garbage)
    for name in ("LF blank lines", "CRLF blank lines", "headers, no blank line", "one line, no newline"):
        assert AmiParser(expect_banner=False).feed(streams[name]) == [], name


def test_the_baseline_reads_line_by_line() -> None:
    parser = LineByLineParser(expect_banner=False)
    assert parser._whole_messages(bytearray(b"Event: X\r\n\r\n"), 0, []) == 0
    assert parser.feed(b"Event: X\r\n\r\n") == [Message.of(Event="X")]


def test_the_report_gives_each_stream_its_ratio_and_cost_per_item() -> None:
    lines: list[str] = []
    report([Figure("busy hour (2 events)", 2, 0.004, 0.008), Figure("LF blank lines", 0, 0.001, 0.002)], lines.append)
    assert "ours/baseline" in lines[0]
    assert "busy hour (2 events)" in lines[1] and "0.50x" in lines[1] and "2000.00" in lines[1]
    assert lines[2].startswith("LF blank lines") and lines[2].rstrip().endswith("-")
