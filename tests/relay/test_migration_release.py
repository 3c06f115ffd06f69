"""Handing an actor's AMQP name over (issue 12): intake stops at once, nothing queued is
lost, the new clu actor starts while the old commands still run, and only commands still
running after the drain limit fail, with an error that says so.

Real RabbitMQ, real clu AMQPClient and AMQPActor, real clu LegacyActor behind the bridge.
"""

from __future__ import annotations

import asyncio
import json

from bridge.amqp.endpoint import ActorEndpoint, IncomingCommand
from bridge.core.handover import HandoverEvent, HandoverState
from bridge.protocol.clu_messages import EXCHANGE_NAME
from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import WAIT, amqp_connection, clu_actor, clu_client
from tests.support.aio import aio_test

ROUTING_FAILURE = "Failed routing"


def _terminal(cmd) -> tuple[str, str]:
    """(code, error text) of a finished clu command."""
    reply = cmd.replies[-1]
    return reply.message_code.value, str(reply.message.get("error", ""))


@aio_test
async def test_release_frees_the_name_at_once_and_the_held_command_finishes(amqp_url):
    """While one command is held: release; a clu actor of the same name starts at once and
    serves new commands; the held command then finishes on the old endpoint; every command
    of a stream sent across the switch gets exactly one terminal reply, and the only
    failure allowed is clu's own "Failed routing" (between release and the new start)."""
    held = asyncio.Event()

    async def handler(cmd: IncomingCommand) -> None:
        await cmd.reply(">")
        if cmd.command_string == "hold":
            await held.wait()
            await cmd.finish({"text": "held command done"})
        else:
            await cmd.finish({"text": "old endpoint"})

    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "relclient") as client:
        ep = ActorEndpoint(conn, "relshutter", handler)
        await ep.start()
        try:
            hold = await client.send_command("relshutter", "hold", await_command=False)
            async with asyncio.timeout(WAIT):
                while not ep.in_flight:
                    await asyncio.sleep(0.01)
            stream: list = []

            async def send_stream(n: int) -> None:
                for _ in range(n):
                    stream.append(await client.send_command("relshutter", "ping",
                                                            await_command=False))
                    await asyncio.sleep(0.002)

            sender = asyncio.ensure_future(send_stream(150))
            await asyncio.sleep(0.05)
            await ep.release()
            assert ep.handover.state is HandoverState.DRAINING
            assert [c.command_string for c in ep.in_flight] == ["hold"]
            async with clu_actor(amqp_url, "relshutter"):  # the name is free: it starts
                await asyncio.wait_for(sender, WAIT)
                late = await asyncio.wait_for(
                    await client.send_command("relshutter", "ping", await_command=False), WAIT)
                assert _terminal(late)[0] == ":"
                assert late.replies[-1].message.get("text") == "Pong."  # the clu actor's
                assert not hold.done()  # still running on the old endpoint
                held.set()
                await asyncio.wait_for(hold, WAIT)
                assert _terminal(hold) == (":", "")
                assert hold.replies[-1].message["text"] == "held command done"
                await asyncio.wait_for(asyncio.gather(*stream), WAIT)
        finally:
            await ep.stop(event=HandoverEvent.IDLE)
        assert ep.handover.state is HandoverState.STOPPED
        assert ep.handover.ended_by is HandoverEvent.IDLE
    outcomes = [_terminal(cmd) for cmd in stream]
    assert len(outcomes) == 150
    bad = [o for o in outcomes if o[0] != ":" and ROUTING_FAILURE not in o[1]]
    assert not bad, bad
    for cmd in stream:  # exactly one terminal reply each
        assert sum(r.message_code.value in ":f" for r in cmd.replies) == 1


@aio_test
async def test_release_serves_every_command_already_queued(amqp_url):
    """Commands published (and confirmed by the broker) just before the release are still
    in the queue when the consumer is cancelled: each is fetched and served, none lost."""
    served: list[str] = []

    async def handler(cmd: IncomingCommand) -> None:
        served.append(cmd.command_id)
        await cmd.finish({"n": cmd.command_string})

    async with amqp_connection(amqp_url) as conn, amqp_connection(amqp_url) as pub_conn:
        ep = ActorEndpoint(conn, "relqueued", handler)
        await ep.start()
        import aio_pika

        channel = await pub_conn.robust_connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE_NAME)
        replies = await channel.declare_queue(exclusive=True)
        await replies.bind(exchange, "reply.relpub")
        answered: dict[str, str] = {}

        async def on_reply(message) -> None:
            await message.ack()
            answered.setdefault(message.headers["command_id"], message.headers["message_code"])

        await replies.consume(on_reply)
        n = 300
        await asyncio.gather(*(exchange.publish(aio_pika.Message(
            json.dumps({"command_string": f"c{i}"}).encode(),
            headers={"commander_id": "relpub", "command_id": f"id{i}"},
            content_type="text/json", correlation_id=f"id{i}"),
            "command.relqueued", mandatory=True) for i in range(n)))
        await ep.release()
        async with asyncio.timeout(WAIT):
            while len(answered) < n:
                await asyncio.sleep(0.02)
        await ep.stop(event=HandoverEvent.IDLE)
        await channel.close()
    assert sorted(served) == sorted(f"id{i}" for i in range(n))
    assert set(answered.values()) == {":"}


def _config(shutter_port: int, *, amqp: bool, drain: float):
    shutter = {"lives": "legacy", "port": shutter_port, "amqp": amqp}
    if not amqp:
        shutter["prefer_amqp"] = True
    return parse_config({"name": "relbridge", "actors": {"shutter": shutter},
                         "timeouts": {"drain": drain}})


@aio_test
async def test_reload_releases_the_name_and_drains_in_the_background(
        amqp_url, start_clu_shutter):
    """Step 2 of the walk-through with commands running on the AMQP face: the reload
    returns with the shutter's queue released (a clu actor named shutter can start), the
    short command finishes on the legacy actor, the long one fails once the drain limit
    ran out, saying so."""
    legacy = start_clu_shutter()
    bridge = Bridge(_config(legacy.port, amqp=True, drain=3.0), amqp_url)
    await bridge.start()
    try:
        await bridge.router.target("shutter").start(wait=True)
        face = bridge.actors["shutter"].amqp_face
        async with clu_client(amqp_url, "relclient2") as client:
            short = await client.send_command("shutter", "slow 0.3", await_command=False)
            long = await client.send_command("shutter", "slow 30", await_command=False)
            async with asyncio.timeout(WAIT):
                while face.in_flight < 2:
                    await asyncio.sleep(0.01)
            diff = await bridge.reload(_config(legacy.port, amqp=False, drain=3.0))
            assert diff["changed"] == ["shutter"]
            assert face.handover.state is HandoverState.DRAINING
            assert bridge.actors["shutter"].amqp_face is None
            assert bridge.status()["handovers"] == [
                {"actor": "shutter", "face": "amqp", "state": "draining", "in_flight": 2}]
            async with clu_actor(amqp_url, "shutter"):  # starts although commands run
                await asyncio.wait_for(short, WAIT)
                assert _terminal(short) == (":", "")
                assert short.replies[-1].message.get("slept") == 0.3
                await asyncio.wait_for(long, WAIT)
                code, error = _terminal(long)
                assert code == "f" and "drain limit" in error and "3 s" in error, error
            async with asyncio.timeout(WAIT):  # the old face is closed, then forgotten
                while bridge.status()["handovers"]:
                    await asyncio.sleep(0.02)
            # The face's drain and the replaced route's (the old link's) have the same
            # limit: whichever notices first fails the command; the face then ends idle.
            assert face.handover.ended_by in (HandoverEvent.LIMIT, HandoverEvent.IDLE)
    finally:
        await bridge.stop()


async def _face_line(reader, mid: int) -> str:
    """The next terminal reply line for ``mid`` on a legacy face (``cid mid code ...``)."""
    while True:
        raw = await asyncio.wait_for(reader.readline(), WAIT)
        assert raw, "the face closed the connection"
        parts = raw.decode().split(" ", 3)
        if len(parts) >= 3 and parts[1] == str(mid) and parts[2] in (":", "f"):
            return raw.decode().strip()


@aio_test
async def test_a_legacy_face_is_kept_across_a_reload_then_refuses_once_its_actor_is_removed(
        amqp_url):
    """An AMQP actor's legacy face: a reload that changes the actor but keeps the port keeps
    the face and its clients; once the actor is removed, new commands are refused at once,
    saying why, and the one still running fails after the drain limit, saying so."""
    from tests.support.ports import free_port

    port = free_port()

    def config(actors):
        return parse_config({"name": "relbridge2", "actors": actors,
                             "timeouts": {"drain": 1.0}})

    async with clu_actor(amqp_url, "relcam"):
        bridge = Bridge(config({"relcam": {"lives": "amqp", "legacy_port": port}}), amqp_url)
        await bridge.start()
        try:
            face = bridge.actors["relcam"].legacy_face
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"me.you 1 ping\n")
            assert (await _face_line(reader, 1)).split()[2] == ":"
            diff = await bridge.reload(config({"relcam": {"lives": "amqp", "legacy_port": port,
                                                          "time_limit": 100}}))
            assert diff["changed"] == ["relcam"] and bridge.actors["relcam"].legacy_face is face
            writer.write(b"me.you 2 ping\n")  # same connection, after the reload
            assert (await _face_line(reader, 2)).split()[2] == ":"
            writer.write(b"me.you 3 hang\n")
            async with asyncio.timeout(WAIT):
                while not face.in_flight:
                    await asyncio.sleep(0.01)
            await bridge.reload(config({}))
            assert face.handover.state is HandoverState.DRAINING
            writer.write(b"me.you 4 ping\n")
            refused = await _face_line(reader, 4)
            assert refused.split()[2] == "f" and "no longer served here" in refused, refused
            hung = await _face_line(reader, 3)
            assert hung.split()[2] == "f" and "drain limit" in hung, hung
            assert await asyncio.wait_for(reader.read(), WAIT) == b""  # then the port closes
            assert face.handover.ended_by is HandoverEvent.LIMIT
            writer.close()
        finally:
            await bridge.stop()


@aio_test
async def test_a_reload_that_keeps_the_route_keeps_the_amqp_face_serving(
        amqp_url, start_clu_shutter):
    """Only the time limit changes: the AMQP face is kept (no moment without a consumer,
    no routing failure), a command running across the reload finishes on it."""
    legacy = start_clu_shutter()

    def config(time_limit):
        return parse_config({"name": "relbridge3", "actors": {"shutter": {
            "lives": "legacy", "port": legacy.port, "time_limit": time_limit}}})

    bridge = Bridge(config(100), amqp_url)
    await bridge.start()
    try:
        await bridge.router.target("shutter").start(wait=True)
        face = bridge.actors["shutter"].amqp_face
        async with clu_client(amqp_url, "relclient3") as client:
            running = await client.send_command("shutter", "slow 0.5", await_command=False)
            diff = await bridge.reload(config(200))
            assert diff["changed"] == ["shutter"]
            assert bridge.actors["shutter"].amqp_face is face and face.time_limit == 200
            assert face.handover.state is HandoverState.SERVING
            assert bridge.status()["handovers"] == []
            after = await asyncio.wait_for(
                await client.send_command("shutter", "ping", await_command=False), WAIT)
            assert _terminal(after) == (":", "")
            await asyncio.wait_for(running, WAIT)
            assert _terminal(running) == (":", "")
    finally:
        await bridge.stop()
