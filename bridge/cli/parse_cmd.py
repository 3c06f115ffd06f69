"""`bridge parse`: reply lines in, one JSON object per line out.

The input is read in blocks of bytes, split into lines (LF, CRLF or a bare CR end
a line, as in text mode), and each block's JSON lines are written with one write;
the output is flushed after every block, so a live pipe (``bridge tail ... |
bridge parse``) sees its lines as they come. Every input line gives exactly one
output line, blank lines included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import orjson

from ..protocol.forms import FORMS, describer
from .io import keep_freed_memory

#: Bytes read per block (a block's lines are parsed and written together).
BLOCK = 1 << 16

_dumps = orjson.dumps
_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="parse reply lines into JSON (one object per line)",
                       description="Parse reply lines (stdin or FILE) and print one JSON object "
                                   "per input line; a line that does not parse gives "
                                   '{"ok": false, ...}, a blank line {"ok": false, "error": '
                                   '"blank line", ...}. The exit code is 0 even then.')
    p.add_argument("--form", choices=FORMS, default="actor",
                   help="actor: 'cid mid code ...'; actor-midfirst: 'mid cid code ...'; "
                        "hub: 'commander mid actor code ...' (default: actor)")
    p.add_argument("--strip-fields", type=int, default=None, metavar="N",
                   help="drop N leading blank-separated fields first (e.g. 2 for the "
                        "date and time of a log); default: 2 for files ending in .log, else 0")
    p.add_argument("file", nargs="?", default="-", help="input file (default: stdin)")
    p.set_defaults(run=run)


def encode(obj: dict[str, Any]) -> bytes:
    """One description as a JSON line (UTF-8, ``\\n`` at the end).

    orjson refuses integers beyond 64 bits (the untyped mapping reads any size)
    and lone surrogates; those objects are written by the standard library.
    """
    try:
        return _dumps(obj, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "surrogatepass")


def blocks_of_lines(stream: BinaryIO, block: int = BLOCK) -> Iterator[list[str]]:
    """The stream's lines (without terminators, decoded as UTF-8 with U+FFFD for bad
    bytes), in lists of whatever complete lines each read brought."""
    read = getattr(stream, "read1", stream.read)
    pending = b""
    while True:
        chunk = read(block)
        if not chunk:
            break
        data = pending + chunk if pending else chunk
        end = len(data) - 1 if data.endswith(b"\r") else len(data)  # LF may follow
        cut = max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end)) + 1
        pending = data[cut:]
        if cut:
            yield _split(data[:cut].decode("utf-8", "replace"))
    if pending:
        yield _split(pending.decode("utf-8", "replace") + "\n")


def _split(text: str) -> list[str]:
    """Lines of ``text``, which ends with a line terminator."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    lines.pop()
    return lines


def line_describer(form: str, strip: int) -> Callable[[str], dict[str, Any]]:
    """``line -> description`` (:func:`~bridge.protocol.forms.describer`), dropping
    ``strip`` leading blank-separated fields first."""
    describe = describer(form)
    if not strip:
        return describe

    def describe_fields(line: str) -> dict[str, Any]:
        fields = line.split(None, strip)
        return describe(fields[strip] if len(fields) > strip else "")
    return describe_fields


def run(args: argparse.Namespace) -> int:
    strip = args.strip_fields
    if strip is None:
        strip = 2 if args.file.endswith(".log") else 0
    describe = line_describer(args.form, strip)
    keep_freed_memory()
    out = sys.stdout.buffer
    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    try:
        for lines in blocks_of_lines(stream):
            out.write(b"".join([encode(describe(line)) for line in lines]))
            out.flush()
    except BrokenPipeError:  # the reader went away (`bridge parse ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return 0
