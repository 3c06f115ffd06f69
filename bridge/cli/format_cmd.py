"""`bridge format`: JSON objects (the `bridge parse` shape) in, reply lines out."""

from __future__ import annotations

import argparse
import json
import sys

from ..protocol import ProtocolError
from ..protocol.forms import FORMS, format_description, is_blank_description
from .io import open_input


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("format", help="format JSON objects (as `bridge parse` prints) into lines",
                       description="Read one JSON object per line (the `bridge parse` shape; "
                                   "'keywords' may also be a JSON body object) and print the "
                                   "reply line in canonical form; the object `bridge parse` "
                                   "prints for a blank line gives a blank line. Bad input "
                                   "lines are reported on stderr; the exit code is 1 if there "
                                   "were any.")
    p.add_argument("--form", choices=FORMS, default=None,
                   help="output form (default: the object's 'form', else actor)")
    p.add_argument("file", nargs="?", default="-", help="input file (default: stdin)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    failed = 0
    with open_input(args.file) as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("expected a JSON object")
                print("" if is_blank_description(obj) else format_description(obj, args.form))
            except (ValueError, ProtocolError) as exc:
                failed += 1
                print(json.dumps({"ok": False, "error": str(exc), "line": number}),
                      file=sys.stderr)
    return 1 if failed else 0
