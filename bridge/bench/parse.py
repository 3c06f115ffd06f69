"""Parse the real TCC log with our parser and, when installed, opscore's, clu's and tron's.

Lines are converted as opscore's ``examples/logparse.py`` does: actor form
``<mid> <cid> <code><rest>`` and hub form ``telrun.user<cid> <mid> tcc <code><rest>``.
Each parser that rejects a line is still timed on it (its rejection is part of its
cost), and the number of rejected lines is reported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..protocol import ProtocolError, parse_actor_reply, parse_hub_reply
from .timing import Rate, measure_rate

DEFAULT_LOG = Path(__file__).resolve().parents[2] / "examples" / "tcc_sample.log"


def load_log(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """The log's lines in (actor mid-first form, hub form)."""
    actor, hub = [], []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        fields = raw.split(" ", 5)
        if len(fields) < 5:
            continue
        mid, cid, code = fields[2], fields[3], fields[4][:1]
        rest = raw.split(" ", 4)[4][1:]
        actor.append(f"{mid} {cid} {code}{rest}")
        hub.append(f"telrun.user{cid} {mid} tcc {code}{rest}")
    return actor, hub


def _ours() -> dict[str, tuple[str, Callable[[str], object]]]:
    return {
        "bridge actor form (mid first)": ("actor", lambda l: parse_actor_reply(l, True)),
        "bridge hub form": ("hub", parse_hub_reply),
    }


def _upstream() -> dict[str, tuple[str, Callable[[str], object]]]:
    parsers: dict[str, tuple[str, Callable[[str], object]]] = {}
    if importlib.util.find_spec("opscore") is not None:
        from opscore.protocols.parser import ActorReplyParser, ReplyParser

        parsers["opscore ActorReplyParser"] = ("actor", ActorReplyParser().parse)
        parsers["opscore ReplyParser"] = ("hub", ReplyParser().parse)
    if importlib.util.find_spec("clu") is not None:
        from clu.legacy.types.parser import ActorReplyParser as CA, ReplyParser as CR

        parsers["clu.legacy ActorReplyParser"] = ("actor", CA().parse)
        parsers["clu.legacy ReplyParser"] = ("hub", CR().parse)
    spec = importlib.util.find_spec("tron")
    if spec is not None and spec.origin:
        os.environ.setdefault("TRON_LOG_DIR", tempfile.mkdtemp(prefix="bench-tron-"))
        sys.path.insert(0, os.path.dirname(spec.origin))  # tron's own modules import this way
        try:
            from tron.Parsing import parseASCIIReply

            parsers["tron parseASCIIReply (hub's own)"] = (
                "actor", lambda l: parseASCIIReply(l, cidFirst=False))
        except Exception:  # pragma: no cover - tron not usable here
            pass
    return parsers


def _runner(parse: Callable[[str], object], lines: list[str], passes: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(passes):
            for line in lines:
                try:
                    parse(line)
                except Exception:
                    pass
        return passes * len(lines)
    return run


def _rejected(parse: Callable[[str], object], lines: list[str]) -> int:
    bad = 0
    for line in lines:
        try:
            parse(line)
        except (ProtocolError, Exception):
            bad += 1
    return bad


def run_parse_benchmark(log: str | os.PathLike[str] = DEFAULT_LOG, runs: int = 5,
                        passes: int = 20, upstream: bool = True) -> tuple[list[Rate], dict[str, int]]:
    """Measure every available parser; return the rates and each parser's rejected-line count."""
    actor, hub = load_log(log)
    parsers = _ours() | (_upstream() if upstream else {})
    rates, rejected = [], {}
    for name, (form, parse) in parsers.items():
        lines = actor if form == "actor" else hub
        rejected[name] = _rejected(parse, lines)
        rates.append(measure_rate(name, "lines/s", _runner(parse, lines, passes), runs))
    return rates, rejected
