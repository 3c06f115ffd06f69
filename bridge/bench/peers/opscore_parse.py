"""The end-to-end parse benchmark's peer: a script around opscore's parser printing `bridge parse`'s JSON.

``python -m bridge.bench.peers.opscore_parse [--form actor-midfirst|hub] [FILE]`` reads
reply lines (FILE or stdin; for a ``.log`` file the date and time fields are dropped,
as `bridge parse` does) and prints one JSON object per input line, in the shape of
`bridge parse`: ``{"ok": true, "form", "commander", "mid", "cid", "actor", "code",
"keywords": [{"name", "values", "json"}]}``, or ``{"ok": false, "error", "position",
"line"}``. It is written as a user would write it: opscore's ``ActorReplyParser`` (which
reads the ``mid cid code`` order) or ``ReplyParser``, ``print(json.dumps(...))`` per
line, and the untyped JSON mapping of ``protocol_specs/json-mapping.md`` written out
here. It imports nothing from this package (its cost is opscore's and the standard
library's). Differences from `bridge parse` that remain: opscore does not keep whether
a value was quoted (so ``"42"`` becomes 42 here), keeps a quoted value's backslash
escapes, and rejects the TCC log's four ``25 11 :`` lines (no blank after the code).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)?\Z")
_WORDS = {"T": True, "F": False, "None": None}


def value_json(text: str):
    """The untyped mapping of one (unquoted) value."""
    if text in _WORDS:
        return _WORDS[text]
    m = _NUMBER.match(text)
    if m is None:
        return text
    if m.group(1) is None:
        return int(text)
    number = float(text)
    return number if math.isfinite(number) else text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--form", choices=("actor-midfirst", "hub"), default="actor-midfirst")
    ap.add_argument("file", nargs="?", default="-")
    args = ap.parse_args(argv)
    from opscore.protocols.parser import ActorReplyParser, ReplyParser

    hub = args.form == "hub"
    parser = ReplyParser() if hub else ActorReplyParser()
    strip = 2 if args.file.endswith(".log") else 0
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace")
    for line in stream:
        line = line.rstrip("\r\n")
        if strip:
            line = (line.split(None, strip)[strip:] or [""])[0]
        if not line.strip(" \t"):
            obj = {"ok": False, "error": "blank line", "position": len(line), "line": line}
        else:
            try:
                reply = parser.parse(line)
            except Exception as exc:  # opscore raises ParseError and others
                obj = {"ok": False, "error": str(exc), "position": None, "line": line}
            else:
                h = reply.header
                obj = {
                    "ok": True,
                    "form": args.form,
                    "commander": h.cmdrName if hub else None,
                    "mid": int(h.commandId),
                    "cid": None if hub else int(h.userId),
                    "actor": h.actor if hub else None,
                    "code": str(h.code),
                    "keywords": [
                        {"name": k.name, "values": [str(v) for v in k.values],
                         "json": (value_json(str(k.values[0])) if len(k.values) == 1
                                  else [value_json(str(v)) for v in k.values])}
                        for k in reply.keywords
                    ],
                }
        print(json.dumps(obj, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
