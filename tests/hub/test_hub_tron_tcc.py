"""A TCC-framed actor (CR line ends, ``<mid> <text>`` commands, ``<mid> <cid>`` replies,
ten init commands) behind the REAL Tron hub and behind our hub port, side by side.

tron runs its own stock ``tcc`` nub (``tron/Nubs/tcc.py``: ``ASCIIReplyDecoder(EOL='\\r',
stripChars='\\n', CIDfirst=False)``, ``ASCIICmdEncoder(EOL='\\r', useCID=False,
CIDfirst=False)``, ``grabCID``, APO's ten ``initCmds``, ``safeCmds='(^device )|(status$)'``)
in front of a TCC-like peer (``tests/legacy/tcc_peer.py``, a real TCC's replies). Ours
is configured from the same tron configuration: ``bridge import-tron`` reads tron's
``local.json`` and the installed tron's ``Nubs/tcc.py`` and writes the bridge TOML
(``eol``, ``command_header``, ``mid_first``, ``init_commands``, ``safe_commands``,
``http_host``/``http_root``, ``programs``), the actor link is built from it as ``bridge
serve`` builds it. A plain commander watches the actor connect
and then commands it; the lines it receives are compared after normalising ids and times.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bridge.core import KeywordCache, Route, Router
from bridge.hub import HubServer
from bridge.legacy.actor_link import ActorLink
from bridge.protocol import keywords_to_json, parse_hub_reply
from bridge.hub.auth import load_programs
from bridge.service.config import BridgeConfig, load_config
from tests.hub.helpers import until
from tests.legacy.tcc_peer import TccPeer
from tests.support.aio import aio_test
from tests.support.ports import LOOPBACK, free_port
from tests.support.tron_hub import TronHub

#: tron's APO TCC nub's initCmds (tron/Nubs/tcc.py, not LCO).
TCC_INIT = ["show version", "show users", "show time", "show status", "show inst/full",
            "show object/full", "show axisconfig", "show focus", "axis status", "mir status"]
#: Commands after the registration (plain commander ``side.tcc``).
STEPS = [("tcc", "show time"), ("tcc", "show status"), ("tcc", "device status"),
         ("keys", "getFor=tcc YourUserNum NumUsers nosuch"), ("hub", "actors"),
         ("keys", "getFor=hub httpRoot"), ("perms", "status")]
ROOT = Path(__file__).resolve().parents[2]
#: The test's own helper commanders of TronHub (startNubs, actorInfo polling).
HELPERS = ("tests.nubs", "tests.ready")


def import_tron(tron_hub: TronHub, port: int, out: Path) -> BridgeConfig:
    """``bridge import-tron`` on the hub's configuration (location LOCAL, the installed
    tron's nubs), with our tcc peer's port; the resulting configuration, parsed."""
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli.main", "import-tron", str(tron_hub.config_dir),
         "--location", "LOCAL", "--actor", f"tcc=127.0.0.1:{port}", "--hub-port", "0",
         "-o", str(out)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    # Exit 1: our loopback listener nub (tests/peers) is no stock nub and is listed so.
    untranslated = result.stderr.split("not translated", 1)[-1]
    assert "loopclient" in untranslated and "tcc" not in untranslated, result.stderr
    config = load_config(out)
    actor = config.actor("tcc")
    assert actor is not None and actor.eol == "\r" and actor.init_commands == tuple(TCC_INIT)
    assert actor.safe_commands == "(^device )|(status$)" and actor.port == port
    return config


def link_for(route: Route) -> ActorLink:
    """As bridge serve builds an actor link for the hub port (Bridge._legacy_target)."""
    return ActorLink(route.actor, route.host or "127.0.0.1", route.port or 0,
                     mid_first=route.mid_first,
                     command_header=route.options.get("command_header", "commander"),
                     eol=route.options.get("eol", "\n"),
                     init_commands=route.options.get("init_cmds", ()), send_init=False,
                     max_delay=0.3)


class Watcher:
    """A blocking plain commander that keeps every line."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def lines(self, quiet: float = 0.5, limit: float = 20.0,
              until_line: str | None = None) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.sock.settimeout(quiet)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if until_line is None or any(l.startswith(until_line) for l in got):
                    break
                continue
            if not data:
                break
            self.buffer += data
            *done, self.buffer = self.buffer.split(b"\n")
            got += [d.decode().rstrip("\r") for d in done]
        return got

    def session(self) -> list[list[str]]:
        steps = []
        for mid, (actor, text) in enumerate(STEPS, start=1):
            self.sock.sendall(f"side.tcc {mid} {actor} {text}\n".encode())
            steps.append(self.lines(0.3, until_line=f"side.tcc {mid} {actor} :"))
        return steps

    def close(self) -> None:
        self.sock.close()


def without_helpers(lines: list[str]) -> list[str]:
    """Drop the lines of TronHub's own helper commands (and their CmdDone)."""
    xids: set[str] = set()
    kept = []
    for line in lines:
        reply = parse_hub_reply(line)
        values = keywords_to_json(reply.keywords)
        if reply.commander in HELPERS:
            continue
        if "CmdIn" in values and values["CmdIn"][0] in HELPERS:
            continue
        if "CmdQueued" in values and values["CmdQueued"][2] in HELPERS:
            xids.add(str(values["CmdQueued"][0]))
            continue
        if "CmdDone" in values and str(values["CmdDone"][0]) in xids:
            continue
        if reply.actor == "hub" and ({"Commanders", "users"} & set(values)):
            continue  # the helpers' connections come and go
        kept.append(line)
    return kept


def normalize(line: str) -> tuple[Any, ...] | None:
    reply = parse_hub_reply(line)
    values = keywords_to_json(reply.keywords)
    if reply.actor == "hub" and list(values) == ["route"]:
        return None  # ours only (protocol_specs/hub.md, difference 15)
    for name, value in values.items():
        if name == "CmdQueued":
            values[name] = ["*", "*", *value[2:]]
        elif name == "CmdDone":
            values[name] = ["*", value[1]]
    return (reply.commander, reply.mid, reply.actor, reply.code, json.dumps(values))


def normalized(lines: list[str]) -> list[Any]:
    return [n for n in map(normalize, lines) if n is not None]


@aio_test
async def test_tcc_with_cr_framing_and_init_commands_against_real_tron(tmp_path):
    # tron, with its stock tcc nub (no generated module: tron.Nubs.tcc is tron's own).
    tron_peer = TccPeer()
    tron_port = await asyncio.to_thread(tron_peer.start)
    tron_hub = TronHub(tmp_path / "tron")
    # The deployment's configuration lists the tcc nub: that is what import-tron reads.
    tron_hub.add_stock_actor("tcc", LOOPBACK, tron_port, boot=True)
    port = free_port()
    config = await asyncio.to_thread(import_tron, tron_hub, port, tmp_path / "bridge.toml")
    tron_hub.add_stock_actor("tcc", LOOPBACK, tron_port)  # started below, while watched
    try:
        await asyncio.to_thread(tron_hub.start)
        watcher = Watcher(tron_hub.port)
        watcher.lines(0.3)
        await asyncio.to_thread(tron_hub.start_nubs, "tcc")
        tron_reg = without_helpers(await asyncio.to_thread(
            watcher.lines, 0.5, 20.0, '.hub 10 tcc :'))
        tron_steps = await asyncio.to_thread(watcher.session)
        watcher.close()
    finally:
        await asyncio.to_thread(tron_hub.stop)
        await asyncio.to_thread(tron_peer.stop)
    tron_commands = list(tron_peer.commands)

    # Ours: the same actor from the imported configuration; it comes up after the watcher.
    our_peer = TccPeer()
    router = Router({"legacy": link_for}, config.routing_table())
    await router.start()
    assert config.hub is not None and config.hub.programs is not None
    hub = HubServer(router, cache=KeywordCache(),
                    http_root=(config.hub.http_host, config.hub.http_root),
                    programs=load_programs(config.hub.programs))
    await hub.start()
    try:
        watcher = Watcher(hub.port)
        await asyncio.to_thread(watcher.lines, 0.3)
        await asyncio.to_thread(our_peer.start, port)
        our_reg = await asyncio.to_thread(watcher.lines, 0.5, 20.0, '.hub 10 tcc :')
        await until(lambda: not hub.commands_in_flight, "the init commands")
        our_steps = await asyncio.to_thread(watcher.session)
        watcher.close()
    finally:
        await hub.stop()
        await router.stop()
        await asyncio.to_thread(our_peer.stop)

    # The actor received the same lines from both (CR framed, `<mid> <text>`).
    assert our_peer.commands == tron_commands
    assert [c.split(" ", 1)[1] for c in tron_commands[:len(TCC_INIT)]] == TCC_INIT
    # The commander saw the same registration and init-command lines, in the same order.
    assert sum('CmdIn="0","tcc"' in line for line in our_reg) == len(TCC_INIT)
    assert ".tcc 0 tcc I YourUserNum=11; NumUsers=1" in our_reg  # the greeting
    assert normalized(our_reg) == normalized(tron_reg), (
        "\n".join(["ours:", *our_reg, "tron:", *tron_reg]))
    for (actor, text), ours, theirs in zip(STEPS, our_steps, tron_steps):
        assert normalized(ours) == normalized(theirs), (
            f"{actor} {text}:\nours: {ours}\ntron: {theirs}")
