"""The REAL Tron hub with its own TCC nub (and its MCP nub), and `bridge serve` configured
from the same Tron configuration by `bridge import-tron`, side by side on the same kind
of actor: for the TCC, CR framing both ways, mid-first reply headers, ``<mid> <text>``
commands, ten init commands; for the MCP, ``<cid> <mid> <text>`` commands (the cid
learnt from the greeting) and ``info`` at connect; a greeting whose keywords ``keys
getFor=<actor>`` returns.

Each hub gets its own TCC-like actor (tests/legacy/tcc_peer.py: a real TCC's reply
lines, its framing), and one plain commander runs the same session against each: the
nub restarted (``hub stopNubs``/``startNubs``: greeting, init commands and their
replies), commands with replies from the real TCC log, the actor's broadcasts, ``keys
getFor=tcc`` with and without key lists. What the commander receives is compared line
by line, after normalising only ids and times and what ``protocol_specs/hub.md`` lists
as deliberate differences.
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.cli.main import main
from tests.hub.test_hub_tron_side_by_side import Client, drain_all
from tests.legacy.tcc_peer import TccPeer
from tests.support.aio import aio_test
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess
from tests.support.tron_hub import TronHub

ROOT = Path(__file__).resolve().parents[2]
BROADCAST = "<the actor broadcasts>"
CMDR = "side.tcc"
RESTART = 2  # the mid of `hub startNubs`


@dataclass(frozen=True)
class Case:
    """One of tron's stock actor nubs and the actor it talks to."""

    actor: str
    peer: dict[str, object]          # TccPeer options: the nub's framing
    commands: tuple[str, ...]        # the session's own commands to the actor
    last_init: str                   # the last init command
    init: int                        # how many init commands
    toml: tuple[str, ...]            # what the imported configuration must say

    @property
    def steps(self) -> list[str]:
        a = self.actor
        return [f"hub stopNubs {a}", f"hub startNubs {a}",
                *(f"{a} {c}" for c in self.commands), BROADCAST, f"keys getFor={a}",
                f"keys getFor={a} YourUserNum NumUsers Pressure MoveItems nosuch",
                "hub actors"]

    def new_peer(self) -> TccPeer:
        return TccPeer(**self.peer)  # type: ignore[arg-type]


CASES = [
    Case("tcc", {}, ("show weather", "show object", "offset rotator 0.0001066", "bogus"),
         "mir status", 10, ('eol = "\\r"', "init_commands = ['show version', ")),
    Case("mcp", {"eol": b"\n", "command_header": "cid-mid", "mid_first": False},
         ("show weather", "status"), "info", 1,
         ("command_header = 'cid-mid'", "init_commands = ['info']")),
]


def run_session(port: int, peer: TccPeer, case: Case) -> list[list[str]]:
    """The commander's lines of each step (blocking)."""
    client = Client(port)
    try:
        client.drain(0.3)
        steps: list[list[str]] = []
        for mid, step in enumerate(case.steps, start=1):
            if step == BROADCAST:
                peer.broadcast("I", 'ObjName=" "')
                peer.broadcast("W", 'DeadProc="T_AUTOLOUVER"')
                steps.append(drain_all({"c": client}, 0.3, until=lambda got: any(
                    "DeadProc" in line for line in got["c"]))["c"])
                continue
            actor, _, text = step.partition(" ")
            client.send(f"{CMDR} {mid} {actor} {text}", "\n")

            def ended(got: dict[str, list[str]], mid: int = mid) -> bool:
                mine = [l.split(" ", 4) for l in got["c"] if l.startswith(f"{CMDR} {mid} ")]
                done = any(fields[3] in (":", "f") for fields in mine)
                if mid == RESTART:  # and the last init command's reply
                    done = done and any(f'Cmd="{case.last_init}"' in line
                                        for line in got["c"])
                return done

            steps.append(drain_all({"c": client}, 0.3, until=ended)["c"])
        return steps
    finally:
        client.close()


_QUEUED = re.compile(r"CmdQueued=\d+,[0-9.]+,")
_DONE = re.compile(r"CmdDone=\d+,")
_OWN_ACTOR = re.compile(r'(?<=[=,])"bridge",|,"bridge"(?=[,;]|\Z)')


def normalize(line: str) -> str:
    """Ids and times out; the bridge's own control actor out of actor lists (hub.md)."""
    line = _DONE.sub("CmdDone=*,", _QUEUED.sub("CmdQueued=*,*,", line))
    if re.match(r"(\.hub 0 hub i Actors=|\.perms 0 perms i (authList|actors)=|"
                rf"{CMDR} \d+ hub i Actors=)", line):
        line = _OWN_ACTOR.sub("", line)
    return line


def without_restart_end(lines: list[str]) -> tuple[list[str], list[str]]:
    """startNubs's own end (``:`` and the ``CmdDone`` after it), and the other lines."""
    end = next(i for i, l in enumerate(lines) if l.startswith(f"{CMDR} {RESTART} hub :"))
    stop = end + 2 if lines[end + 1:end + 2] and "CmdDone" in lines[end + 1] else end + 1
    return lines[end:stop], lines[:end] + lines[stop:]


def tron_session(tmp_path: Path, case: Case) -> tuple[list[list[str]], Path, list[str]]:
    peer = case.new_peer()
    peer.start()
    hub = TronHub(tmp_path / "tron")
    # tron's own tron/Nubs/<actor>.py, with actors.<actor> of the hub's local.json
    hub.add_stock_actor(case.actor, "127.0.0.1", peer.port, boot=True)
    try:
        hub.start()
        return run_session(hub.port, peer, case), hub.config_dir, peer.commands
    finally:
        hub.stop()
        peer.stop()


def bridge_session(tmp_path: Path, config_dir: Path, amqp_url: str, case: Case
                   ) -> tuple[list[list[str]], list[str]]:
    peer = case.new_peer()
    peer.start()
    port = free_port()
    config = tmp_path / "bridge.toml"
    try:
        # The same configuration tron ran with (its local.json, its installed Nubs);
        # only the actor's port is another (its own peer) and the hub port a free one.
        assert main(["import-tron", str(config_dir), "--location", "LOCAL",
                     "--actor", f"{case.actor}=127.0.0.1:{peer.port}", "--hub-port",
                     str(port), "-o", str(config)]) == 1  # our loopclient nub is not tron's
        text = config.read_text()
        assert all(setting in text for setting in case.toml), text
        serve = ManagedProcess(
            [sys.executable, "-m", "bridge.cli.main", "serve", "--config", config],
            name="bridge-serve", log_dir=tmp_path, cwd=ROOT, ready_timeout=120,
            env={"BRIDGE_AMQP_URL": amqp_url})
        serve.start()
        try:
            return run_session(port, peer, case), peer.commands
        finally:
            serve.stop()
    finally:
        peer.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.actor for c in CASES])
@aio_test
async def test_nub_through_real_tron_and_through_imported_bridge(tmp_path, amqp_url, case):
    theirs, config_dir, tron_saw = await asyncio.to_thread(tron_session, tmp_path, case)
    ours, we_sent = await asyncio.to_thread(bridge_session, tmp_path, config_dir, amqp_url,
                                            case)
    # The actor received the same lines from both (the TCC: `<mid> <text>\r`; the MCP:
    # `<cid> <mid> <text>` with the cid of its greeting), mids from 1 on each connection,
    # the init commands on each connection, then the session's commands.
    assert we_sent == tron_saw
    n = case.init
    assert len(tron_saw) == 2 * n + len(case.commands)
    if case.actor == "tcc":
        assert tron_saw[:n] == tron_saw[n:2 * n] and tron_saw[0] == "1 show version"
    else:
        assert tron_saw[:2] == ["11 1 info", "12 1 info"]  # cid of each connection
    for step, mine, tron in zip(case.steps, ours, theirs):
        mine, tron = list(map(normalize, mine)), list(map(normalize, tron))
        if step.startswith("hub startNubs"):
            # hub.md 13: our startNubs ends once the actor's greeting is read (tron's
            # when the socket connects): the same lines, its end later.
            end_mine, mine = without_restart_end(mine)
            end_tron, tron = without_restart_end(tron)
            assert len(end_mine) == 2 and end_mine == end_tron
        assert mine == tron, f"step {step!r}:\nours: {mine}\ntron: {tron}"
    assert len(ours) == len(theirs) == len(case.steps)
