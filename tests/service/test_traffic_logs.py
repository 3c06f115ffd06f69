"""Per-actor traffic logs: exactly the lines exchanged with a real legacy actor (seen by a TCP
proxy of the test's own between the bridge and a clu LegacyActor), each command crossing to
AMQP, one line per command at its end, and rotation by night with an injected clock."""

from __future__ import annotations

import asyncio
import logging
import re

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from bridge.service.logs import Rotation, night_start
from bridge.service.traffic import TrafficLogs
from tests.amqp.helpers import clu_client
from tests.relay.test_legacy_face import LegacyClient
from tests.service.helpers import wait_until
from tests.support.aio import aio_test
from tests.support.ports import free_port

WAIT = 10.0
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


class LineProxy:
    """Forwards one TCP connection to ``port`` and records every line in each direction."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[tuple[str, str]] = []  # (">" to the actor | "<" from it, line)
        self.server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._tasks += [asyncio.ensure_future(self._pump(reader, up_writer, ">")),
                        asyncio.ensure_future(self._pump(up_reader, writer, "<"))]

    async def _pump(self, reader, writer, direction: str) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                writer.close()
                return
            self.lines.append((direction, raw.decode().rstrip("\n").removesuffix("\r")))
            writer.write(raw)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.server is not None:
            self.server.close()


async def clu_send(client, actor, text):
    cmd = await client.send_command(actor, text, await_command=False)
    return await asyncio.wait_for(cmd, WAIT)


def traffic_entries(path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        m = re.fullmatch(rf"({STAMP}) (\S+) (.*)", line)
        assert m, line
        out.append((m.group(2), m.group(3)))
    return out


@aio_test
async def test_traffic_log_holds_exactly_the_lines_exchanged(amqp_url, clu_shutter, tmp_path,
                                                             caplog):
    caplog.set_level(logging.INFO, logger="bridge.commands")
    proxy = LineProxy(clu_shutter.port)
    proxy_port = await proxy.start()
    hub_port = free_port()
    config = parse_config({"name": "logged", "hub": {"port": hub_port},
                           "logs": {"traffic": str(tmp_path / "traffic")},
                           "control": {"heartbeat": 0},
                           "actors": {"shutter": {"lives": "legacy", "port": proxy_port}}})
    try:
        async with Bridge(config, amqp_url) as bridge, clu_client(amqp_url, "trafficker") as client:
            link = bridge.router.target("shutter")
            await link.start(wait=True)
            await wait_until(lambda: not link.in_flight, what="the hub's init commands")
            status = await clu_send(client, "shutter", "status")
            assert status.status.did_succeed
            fail = await clu_send(client, "shutter", "fail_me")
            assert fail.status.did_fail
            hub = await LegacyClient.connect(hub_port)
            try:
                hub.writer.write(b"ops.me 9 shutter echo x y\n")
                await hub.line_matching(lambda line: line.startswith("ops.me 9 shutter :"))
            finally:
                hub.close()
            log_path = tmp_path / "traffic" / "shutter.log"

            def same_lines() -> bool:
                # Each direction in its exact order; the two directions interleave as each
                # side saw them (the bridge logs a line when it writes or reads it, the
                # proxy when it passes it on), which may differ when both are busy.
                logged = [e for e in traffic_entries(log_path) if e[0] in "<>"]
                return all([line for d, line in logged if d == way]
                           == [line for d, line in proxy.lines if d == way] for way in "<>")

            await wait_until(same_lines, what="every line logged")
        assert len(proxy.lines) > 15  # greeting, init commands and their replies, ours
        assert any(d == ">" and line.endswith(" status") for d, line in proxy.lines)

        entries = traffic_entries(log_path)
        amqp_in = [rest for d, rest in entries if d == "amqp>"]
        assert [r.split(" ", 3)[3] for r in amqp_in] == ["status", "fail_me"]
        commander, command_id = amqp_in[0].split(" ")[:2]
        assert commander == "trafficker.shutter" and command_id == str(status.command_id)
        ends = [rest.split(" ") for d, rest in entries if d == "amqp."]
        assert [e[3] for e in ends] == ["done", "failed"] and float(ends[0][4]) > 0
        replies = [rest for d, rest in entries if d == "amqp<" and rest.startswith(commander)]
        assert len(replies) == len(status.replies) + len(fail.replies)  # each one relayed
        assert replies[-1].endswith(' f error="fail_me always fails"')
        hub_in = [rest for d, rest in entries if d == "hub>"]
        assert hub_in == [f"ops.me 9 {hub_in[0].split()[2]} echo x y"]
        assert [rest.split(" ")[3] for d, rest in entries if d == "hub."] == ["done"]

        # One line per command at its end in the main log.
        ended = [r.getMessage() for r in caplog.records if r.name == "bridge.commands"]
        assert len(ended) == 3
        assert re.fullmatch(rf"shutter amqp from trafficker\.shutter id={command_id} -> id=\d+: "
                            r"done in \d+\.\d{6} s, \d+ replies: 'status'", ended[0]), ended[0]
        assert ended[1].startswith(f"shutter amqp from trafficker.shutter id=") and \
            ": failed in " in ended[1]
        assert re.match(r"shutter hub from ops\.me id=9 -> id=\d+: done in ", ended[2]), ended[2]
    finally:
        await proxy.stop()


def test_traffic_logs_rotate_by_night(tmp_path):
    now = [night_start(61400, 0.3) - 0.5]
    logs = TrafficLogs("rot", tmp_path, Rotation("mjd", mjd_offset=0.3), clock=lambda: now[0])
    write = logs.link_sink("shutter")
    write(">", "1 status")
    now[0] += 1.0
    write("<", "5 1 : shutter=open")
    logs.close()
    assert [e for e in traffic_entries(tmp_path / "shutter-61399.log")] == [(">", "1 status")]
    assert traffic_entries(tmp_path / "shutter-61400.log") == [("<", "5 1 : shutter=open")]


@aio_test
async def test_traffic_log_of_an_amqp_actor(amqp_url, start_clu_camera, tmp_path):
    """A clu AMQP actor's traffic log: the commands its legacy face sent it, their replies
    and ends, and its replies to another AMQP client (what the face's clients see)."""
    start_clu_camera(amqp_url)
    face_port = free_port()
    config = parse_config({"name": "camlogged", "logs": {"traffic": str(tmp_path / "t")},
                           "control": {"heartbeat": 0},
                           "actors": {"camera": {"lives": "amqp", "legacy_port": face_port}}})
    async with Bridge(config, amqp_url), clu_client(amqp_url, "other") as client:
        face = await LegacyClient.connect(face_port)
        try:
            replies = await face.command("me.you 5 echo a b", 5)
            assert replies[-1].code == ":"
        finally:
            face.close()
        assert (await clu_send(client, "camera", "ping")).status.did_succeed
        log_path = tmp_path / "t" / "camera.log"
        await wait_until(lambda: any(d == "amqp*" and ":" in rest.split(" ")[0]
                                     for d, rest in traffic_entries(log_path)),
                         what="the other client's ping reply in the log")
    entries = traffic_entries(log_path)
    (sent,) = [rest for d, rest in entries if d == "legacy>"]
    commander, incoming, command_id, text = sent.split(" ", 3)
    assert (commander, text) == ("me.you", "echo a b") and incoming.endswith(".5")
    got = [rest for d, rest in entries if d == "legacy<"]
    assert len(got) == len(replies) and got[-1].startswith(f"{commander} {incoming} "
                                                           f"{command_id} : echo=")
    assert [rest.split(" ")[3] for d, rest in entries if d == "legacy."] == ["done"]
    assert any(rest.startswith(": ") for d, rest in entries if d == "amqp*")
