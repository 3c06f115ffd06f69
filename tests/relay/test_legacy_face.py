"""legacy -> AMQP: a raw legacy socket commands a real clu AMQPActor (subprocess) through
the bridge's legacy face, over a real RabbitMQ."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from bridge.amqp import AmqpCommander
from bridge.protocol import parse_actor_reply
from bridge.protocol.clu_messages import actor_replies_binding
from bridge.relay.amqp_target import AmqpTarget
from bridge.relay.legacy_face import LegacyFace, amqp_commander_id
from tests.amqp.helpers import amqp_connection, clu_client, wire_spy
from tests.support.aio import aio_test

WAIT = 15


def test_amqp_commander_id_keeps_the_legacy_commander():
    assert amqp_commander_id("APO.john", 3, "camera") == "APO.john.camera"
    assert amqp_commander_id(".hub", 1, "camera") == "hub.camera"
    assert amqp_commander_id(None, 2, "camera") == "legacy.user2.camera"
    assert amqp_commander_id("a b.c", 2, "camera") == "a_b.c.camera"


@asynccontextmanager
async def legacy_face(url, name="camera", **kw):
    async with amqp_connection(url) as conn:
        commander = AmqpCommander(conn, "bridge_test")
        await commander.start()
        face = LegacyFace(name, AmqpTarget(commander), **kw)
        await face.start()
        try:
            yield face
        finally:
            await face.stop()
            await commander.stop()


class LegacyClient:
    """A raw legacy client: writes ``[cmdr] mid text`` lines, reads reply lines."""

    def __init__(self, reader, writer):
        self.reader, self.writer, self.lines = reader, writer, []

    @classmethod
    async def connect(cls, port):
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def command(self, line: str, mid: int):
        """Send ``line``; return the parsed replies with that mid, up to the terminal one."""
        self.writer.write(line.encode() + b"\n")
        got = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), WAIT)
            assert raw, "connection closed"
            self.lines.append(raw.decode())
            reply = parse_actor_reply(raw.decode())
            if reply.mid == mid and reply.cid != 0:
                got.append(reply)
                if reply.code in ":f!":
                    return got

    async def line_matching(self, predicate):
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), WAIT)
            assert raw, "connection closed"
            self.lines.append(raw.decode())
            if predicate(raw.decode()):
                return raw.decode()

    def close(self):
        self.writer.close()


def kw(reply):
    from bridge.protocol import keywords_to_json

    return keywords_to_json(reply.keywords)


@aio_test
async def test_raw_legacy_socket_commands_clu_amqp_actor(amqp_url, start_clu_camera):
    start_clu_camera(amqp_url)
    async with legacy_face(amqp_url, version="1.2.3") as face:
        client = await LegacyClient.connect(face.port)
        try:
            greeting = await client.line_matching(lambda l: "version" in l)
            assert greeting == '1 0 i version="1.2.3"\n'

            status = await client.command("APO.john 5 status", 5)
            assert [r.code for r in status] == [">", "i", "i", ":"]
            values = kw(status[1])
            assert values["temperature"] == -110.25 and values["n_exposures"] == 42
            assert values["shutter_open"] is False and values["cooler_on"] is True
            assert values["comment"] == 'a "quoted" string, with commas; and semicolons'
            assert values["filters"] == ["g", "r", "i"] and values["window"] == [0, 0, 2048, 2048]
            assert values["mixed"] == [1, 2.5, "three", True] and values["last_error"] is None
            assert kw(status[2]) == {"text": "status done"}
            raw_info = next(l for l in client.lines if " 5 i temperature" in l)
            assert 'comment="a \\"quoted\\" string, with commas; and semicolons"' in raw_info

            failed = await client.command("6 fail_me", 6)
            assert [r.code for r in failed] == [">", "i", "f"]
            assert kw(failed[-1]) == {"error": "fail_me always fails"}

            levels = await client.command("7 levels", 7)
            assert [r.code for r in levels][1:] == ["d", "i", "w", "e", ":"]

            unknown = await client.command("8 no_such_verb", 8)
            assert unknown[-1].code == "f" and "error" in kw(unknown[-1])
        finally:
            client.close()


@aio_test
async def test_commander_id_and_broadcasts_of_the_amqp_actor(amqp_url, start_clu_camera):
    start_clu_camera(amqp_url)
    async with legacy_face(amqp_url) as face, wire_spy(amqp_url, binding="command.#") as spy, \
            clu_client(amqp_url, "other") as other:
        client = await LegacyClient.connect(face.port)
        watcher = await LegacyClient.connect(face.port)
        try:
            await client.command("APO.john 9 expose 0.1", 9)
            (msg,) = await spy.wait_for(lambda m: m.routing_key == "command.camera")
            assert msg.headers["commander_id"] == "APO.john.camera"
            # Another (AMQP) commander's command: its replies reach legacy clients as cid 0.
            cmd = await other.send_command("camera", "expose 0 --no-sleep", await_command=False)
            await asyncio.wait_for(cmd, WAIT)
            line = await watcher.line_matching(lambda l: l.startswith("0 0 i exposure_state"))
            assert line == "0 0 i exposure_state=integrating; exptime=0.0\n"
        finally:
            client.close()
            watcher.close()


@aio_test
async def test_amqp_actor_missing_fails_at_once(amqp_url):
    async with legacy_face(amqp_url, name="nobody") as face:
        client = await LegacyClient.connect(face.port)
        try:
            replies = await client.command("3 status", 3)
            assert [r.code for r in replies] == ["f"]
            assert kw(replies[0]) == {"error": "Failed routing message to consumer 'nobody'."}
            assert face.in_flight == 0
        finally:
            client.close()


@aio_test
async def test_the_face_opens_once_the_actors_traffic_is_heard(amqp_url):
    """A client that connects as soon as the face has started sees every reply of the
    actor from then on, also of a command someone else sends at once: the commander's
    queue is already bound to the actor's replies when ``start`` returns (as the bridge
    runs it, without hearing everything)."""
    binding = actor_replies_binding("camera")
    async with amqp_connection(amqp_url) as conn:
        commander = AmqpCommander(conn, "bridge_test", hear_all=False)
        await commander.start()
        face = LegacyFace("camera", AmqpTarget(commander))
        assert AmqpCommander(conn, "hears_all").hears(binding)  # clu's way: reply.#
        assert not commander.hears(binding)  # asked for in the background, not bound yet
        await face.start()
        try:
            assert commander.hears(binding)
        finally:
            await face.stop()
            await commander.stop()


@aio_test
async def test_the_face_opens_even_if_the_actors_traffic_cannot_be_heard(amqp_url, caplog):
    """The bind fails (here: the commander was never started): the face still listens,
    and says why it may miss the actor's traffic."""
    async with amqp_connection(amqp_url) as conn:
        commander = AmqpCommander(conn, "bridge_test", hear_all=False)  # not started
        face = LegacyFace("camera", AmqpTarget(commander))
        await face.start()
        try:
            client = await LegacyClient.connect(face.port)
            greeting = await client.line_matching(lambda line: "yourUserID" in line)
            assert greeting.startswith("1 0 i ")
            client.close()
        finally:
            await face.stop()
    assert any("not heard yet" in r.getMessage() and "not started" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
