"""`bridge parse`: reply lines in, one JSON object per line out."""

from __future__ import annotations

import argparse
import json
import sys

from ..protocol.forms import FORMS, describe_line
from .io import open_input


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="parse reply lines into JSON (one object per line)",
                       description="Parse reply lines (stdin or FILE) and print one JSON object "
                                   "per line; a line that does not parse gives "
                                   '{"ok": false, ...}. The exit code is 0 even then.')
    p.add_argument("--form", choices=FORMS, default="actor",
                   help="actor: 'cid mid code ...'; actor-midfirst: 'mid cid code ...'; "
                        "hub: 'commander mid actor code ...' (default: actor)")
    p.add_argument("--strip-fields", type=int, default=None, metavar="N",
                   help="drop N leading blank-separated fields first (e.g. 2 for the "
                        "date and time of a log); default: 2 for files ending in .log, else 0")
    p.add_argument("file", nargs="?", default="-", help="input file (default: stdin)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    strip = args.strip_fields
    if strip is None:
        strip = 2 if args.file.endswith(".log") else 0
    with open_input(args.file) as stream:
        for line in stream:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if strip:
                line = (line.split(None, strip)[strip:] or [""])[0]
            print(json.dumps(describe_line(line, args.form), ensure_ascii=False), flush=False)
    sys.stdout.flush()
    return 0
