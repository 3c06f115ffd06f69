"""Parse the real TCC log with our parser and, when installed, opscore's, clu's and tron's.

Lines are converted as opscore's ``examples/logparse.py`` does: actor form
``<mid> <cid> <code><rest>`` and hub form ``telrun.user<cid> <mid> tcc <code><rest>``.
Each parser that rejects a line is still timed on it (its rejection is part of its
cost), and the number of rejected lines is reported.

:func:`run_end_to_end` times whole commands instead: `bridge parse` and a script
around opscore's parser (:mod:`bridge.bench.peers.opscore_parse`) that prints the
same JSON, each as a process reading the log (repeated to some 100,000 lines) and
writing a file, start-up included.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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


# --- End to end: `bridge parse` against a script around opscore's parser -------------------

#: The package root (the directory holding ``bridge/``), put first on the children's path.
_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class EndToEnd:
    """`bridge parse` and the opscore script on the same file, timed as processes.

    ``rates`` are lines per second of wall time and lines per second of the process's
    CPU time (user + system, start-up included); ``checks`` says what each produced.
    """

    rates: list[Rate]
    checks: dict[str, int]


def write_repeated_log(log: str | os.PathLike[str], lines: int, directory: str) -> tuple[Path, int]:
    """The log repeated until it has at least ``lines`` lines, as ``<directory>/input.log``."""
    text = Path(log).read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    per_copy = text.count("\n")
    copies = max(1, -(-lines // per_copy))
    path = Path(directory) / "input.log"
    path.write_text(text * copies, encoding="utf-8")
    return path, per_copy * copies


def _commands(path: Path, upstream: bool) -> dict[str, list[str]]:
    commands = {"bridge parse": [sys.executable, "-m", "bridge.cli.main", "parse",
                                 "--form", "actor-midfirst", str(path)]}
    if upstream and importlib.util.find_spec("opscore") is not None:
        commands["opscore script"] = [sys.executable, "-m", "bridge.bench.peers.opscore_parse",
                                      "--form", "actor-midfirst", str(path)]
    return commands


def _timed(command: list[str], out: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``command`` writing to ``out``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(out, "wb") as f:
        subprocess.run(command, stdout=f, stderr=subprocess.PIPE, env=env, cwd=_ROOT, check=True,
                       timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run_end_to_end(log: str | os.PathLike[str] = DEFAULT_LOG, runs: int = 5, lines: int = 100_000,
                   upstream: bool = True) -> EndToEnd:
    """Run `bridge parse` and the opscore script (when opscore is installed) ``runs`` times
    each, interleaved, on the log repeated to ``lines`` lines; both print the same JSON."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        path, count = write_repeated_log(log, lines, tmp)
        commands = _commands(path, upstream)
        outputs = {name: Path(tmp) / f"out{i}.json" for i, name in enumerate(commands)}
        timings: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for name, command in commands.items():  # warm-up: caches, compiled bytecode
            _timed(command, outputs[name], env)
        for _ in range(runs):
            for name, command in commands.items():
                timings[name].append(_timed(command, outputs[name], env))
        checks = {"input lines": count}
        texts = {name: out.read_bytes().splitlines() for name, out in outputs.items()}
        for name, text in texts.items():
            checks[f"{name}: output lines"] = len(text)
        if len(texts) == 2:
            ours, theirs = texts.values()
            checks["lines whose JSON differs"] = sum(
                json.loads(a) != json.loads(b) for a, b in zip(ours, theirs))
    rates = []
    for name, pairs in timings.items():
        rates.append(Rate(f"{name} (wall)", "lines/s", [count / w for w, _ in pairs]))
    for name, pairs in timings.items():
        rates.append(Rate(f"{name} (CPU)", "lines/CPU s", [count / c for _, c in pairs]))
    return EndToEnd(rates, checks)
