"""`bridge parse`'s input framing: lines split across reads come out whole, in order."""

import io

import pytest

from bridge.cli.parse_cmd import blocks_of_lines, encode, line_describer

TEXT = "1 2 : a=1\r\n3 4 : b\r5 6 i c=\"é\"\n\n7 8 w\r\r\n9 10 :"
#: What text mode (universal newlines) reads from TEXT.
EXPECTED = ["1 2 : a=1", "3 4 : b", "5 6 i c=\"é\"", "", "7 8 w", "", "9 10 :"]


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 11, 64, 1 << 16])
def test_lines_split_across_reads_come_out_whole(block):
    lines = [l for chunk in blocks_of_lines(io.BytesIO(TEXT.encode()), block) for l in chunk]
    assert lines == EXPECTED == io.StringIO(TEXT, newline=None).read().split("\n")


def test_a_stream_ending_with_a_line_end_gives_no_extra_line():
    lines = [l for chunk in blocks_of_lines(io.BytesIO(b"1 2 :\r"), 1) for l in chunk]
    assert lines == ["1 2 :"]


def test_encode_falls_back_to_the_standard_library_for_big_integers():
    describe = line_describer("actor", 0)
    assert encode(describe("1 2 : n=18446744073709551616")).endswith(
        b'"json":18446744073709551616}]}\n')
    assert encode(describe("1 2 : n=1")).endswith(b'"json":1}]}\n')
