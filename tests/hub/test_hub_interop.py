"""Interop: real clients against our hub port exactly as against the REAL Tron hub.

* a clu ``LegacyActor`` registers itself (``hub startNubs shutter``) and our hub connects
  back to it through the shutter's route;
* one session (registration, status, open, fail_me, an unknown actor, keys getFor, hub
  verbs, a broadcast of the actor) is run against the real Tron hub and against ours with
  the same raw commander; the lines it receives are compared after normalising only
  what differs deliberately (see protocol_specs/hub.md), and every line of both hubs is
  parsed with opscore's ``ReplyParser``;
* clu's own ``TronConnection`` runs the same commands against both hubs and must see the
  same outcomes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from clu.legacy.tron import TronConnection as CluTronConnection
from opscore.protocols.parser import ReplyParser

from bridge.protocol import keywords_to_json, parse_hub_reply
from tests.hub.helpers import RawCommander, legacy_route, running_hub, until
from tests.support.aio import aio_test
from tests.support.ports import free_port
from tests.support.tron_hub import HubCommander, TronHub

CID = "peers.raw"
STEPS: list[tuple[str, str]] = [
    ("shutter", "status"),
    ("shutter", "open"),
    ("shutter", "fail_me"),
    ("nosuch", "status"),
    ("keys", "getFor=shutter shutter shutter_moves nosuch"),
    ("hub", "version"),
    ("BROADCAST", ""),  # a client connects to the actor directly: clu broadcasts UserInfo
    ("hub", "actors"),
    ("hub", "status"),
    ("keys", "getFor=hub actors"),
    ("hub", "nosuchverb"),
    ("shutter", "spam 3"),
    ("msg", "hello there"),
    ("shutter", "close"),
]


# -- one session, run the same way against either hub ----------------------------------------

def _quiet(cmdr: HubCommander, seconds: float) -> list[str]:
    lines = []
    while True:
        try:
            lines.append(cmdr.read_line(seconds))
        except TimeoutError:
            return lines


def run_session(port: int, actor_port_box: list[int], start_actor: Callable[[], Any]
                ) -> tuple[list[str], list[list[str]]]:
    """Registration lines and the lines of each step, as one raw commander received them."""
    with HubCommander("127.0.0.1", port, cid=CID, timeout=20) as cmdr:
        start_actor()  # returns once the actor's `hub startNubs shutter` has completed
        registration = cmdr.read_until(
            lambda l: l.startswith(".hub ") and " shutter : version=" in l, timeout=20)
        registration += _quiet(cmdr, 0.7)
        steps = []
        for actor, text in STEPS:
            if actor == "BROADCAST":
                with socket.create_connection(("127.0.0.1", actor_port_box[0])):
                    steps.append(_quiet(cmdr, 0.7))
                time.sleep(0.2)
                continue
            mid = cmdr.send(actor, text)
            lines = cmdr.read_until(
                lambda l: l.split(" ", 4)[:2] == [CID, str(mid)] and l.split(" ", 4)[3] in ":fF",
                timeout=20)
            steps.append(lines + _quiet(cmdr, 0.4))
        return registration, steps


def normalize(line: str) -> tuple[Any, ...] | None:
    """What must be equal between Tron and us; None for lines deliberately not emulated."""
    reply = parse_hub_reply(line)
    values = keywords_to_json(reply.keywords)
    if reply.actor == "hub" and list(values) == ["route"]:
        return None  # our addition to `hub status`: where each routed actor lives now
    for name, value in values.items():
        listed = value if isinstance(value, list) else [value]
        if name == "CmdQueued":  # xid, time, actor-side mid
            value = ["*", "*", *listed[2:5], "*", *listed[6:]]
        elif name == "CmdDone":
            value = ["*", listed[1]]
        elif name == "Commanders":  # nub names: loopclient.vN there, client.vN here
            value = ["nub"] * len(listed)
        elif name == "version" and reply.actor in ("hub", "keys_hub"):
            value = "*"
        elif name == "msg":
            value = ["*", *listed[1:]]
        values[name] = value
    return (reply.commander, reply.mid, reply.actor, reply.code, json.dumps(values))


def normalized(lines: list[str]) -> list[tuple[Any, ...]]:
    return [n for n in map(normalize, lines) if n is not None]


def opscore_rejects(lines: list[str]) -> list[str]:
    parser = ReplyParser()
    bad = []
    for line in lines:
        try:
            parser.parse(line)
        except Exception:
            bad.append(line)
    return bad


@aio_test
async def test_clu_legacy_actor_registers_with_our_hub_and_is_connected_back(
        start_clu_shutter):
    port = free_port()
    async with running_hub([legacy_route("shutter", port)]) as hub:
        watcher = await RawCommander.connect(hub.port, "watch.er")
        # clu's LegacyActor.start() awaits the hub's answer to `hub startNubs shutter`.
        peer = await asyncio.to_thread(start_clu_shutter, port=port, tron_port=hub.port)
        assert peer.running
        lines = await watcher.read_until(lambda l: l == "shutter.shutter 1 hub : ")
        assert 'shutter.shutter 1 hub i text="(re-)starting nub shutter"' in lines
        await until(lambda: "shutter" in hub.actor_names(), "the link to the shutter")
        assert (await watcher.call("shutter", "ping"))[-1] == f"watch.er 1 shutter : text=Pong."
        assert "shutter.shutter" not in hub.commander_names()  # names are the nubs'
        assert len(hub.commander_names()) == 2
        await watcher.close()


@aio_test
async def test_same_session_against_real_tron_and_our_hub(tron_hub: TronHub, start_clu_shutter):
    # The real Tron hub knows the actor; the shutter registers itself with it.
    tron_port = free_port()
    tron_hub.add_actor("shutter", "127.0.0.1", tron_port)
    tron_reg, tron_steps = await asyncio.to_thread(
        run_session, tron_hub.port, [tron_port],
        lambda: start_clu_shutter(port=tron_port, tron_port=tron_hub.port))
    # Ours: same actor program, same registration, in front of a Router.
    port = free_port()
    async with running_hub([legacy_route("shutter", port)], version="9.9.9") as hub:
        our_reg, our_steps = await asyncio.to_thread(
            run_session, hub.port, [port],
            lambda: start_clu_shutter(port=port, tron_port=hub.port))

    everything_ours = our_reg + [l for step in our_steps for l in step]
    everything_tron = tron_reg + [l for step in tron_steps for l in step]
    assert opscore_rejects(everything_ours) == []
    assert opscore_rejects(everything_tron) == []
    assert all(l.split(" ", 4)[3] in ">iwdef:!IWDEF" for l in everything_ours)

    # Registration: the same lines; independent lines may come in another order.
    assert Counter(normalized(our_reg)) == Counter(normalized(tron_reg))
    # Every step: the same lines in the same order.
    for (actor, text), ours, theirs in zip(STEPS, our_steps, tron_steps):
        assert normalized(ours) == normalized(theirs), f"step {actor} {text!r}"
    assert len(our_steps) == len(tron_steps) == len(STEPS)


# -- clu's TronConnection ----------------------------------------------------------------------

async def clu_outcomes(port: int) -> list[tuple[Any, ...]]:
    """Run commands with clu's TronConnection; (status, replies' codes, last message) each."""
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    tron = CluTronConnection("clu.tester", "127.0.0.1", port)
    rejected: list[str] = []
    parse = tron.rparser.parse

    def counting_parse(line: str) -> Any:
        try:
            return parse(line)
        except Exception:
            rejected.append(line)
            raise

    tron.rparser.parse = counting_parse  # type: ignore[method-assign]
    try:
        await tron.start(get_keys=False)
        assert tron.connected()
        outcomes = []
        for actor, text in [("shutter", "status"), ("shutter", "echo a b"),
                            ("shutter", "fail_me"), ("hub", "version"), ("nosuch", "ping"),
                            ("keys", "getFor=shutter shutter nosuch")]:
            command = tron.send_command(actor, text)
            await asyncio.wait_for(command, 20)
            last = dict(command.replies[-1].message) if command.replies else {}
            if actor == "hub":
                last = {k: "*" for k in last}
            outcomes.append((actor, text, command.status.name,
                             [r.message_code for r in command.replies],
                             [dict(r.message) for r in command.replies[:-1]], last))
        assert rejected == []
        assert not tron.running_commands
        return outcomes
    finally:
        tron.stop()
        loop.set_exception_handler(handler)


@aio_test
async def test_clu_tron_connection_sees_the_same_as_with_real_tron(tron_hub: TronHub,
                                                                    start_clu_shutter):
    await asyncio.to_thread(start_clu_shutter, tron_hub=tron_hub)
    with_tron = await clu_outcomes(tron_hub.port)

    shutter = await asyncio.to_thread(start_clu_shutter)
    async with running_hub([legacy_route("shutter", shutter.port)]) as hub:
        await until(lambda: "shutter" in hub.actor_names(), "the link to the shutter")
        with_ours = await clu_outcomes(hub.port)

    assert with_ours == with_tron
    statuses = {(a, t): s for a, t, s, *_ in with_ours}
    assert statuses[("shutter", "status")] == "DONE"
    assert statuses[("shutter", "fail_me")] == "FAILED"
    assert statuses[("nosuch", "ping")] == "FAILED"
