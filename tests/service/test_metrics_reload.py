"""``[metrics] enabled`` and ``[logs] commands`` take effect on a reload (SIGHUP, ``bridge
reload``): counting starts and stops on every side a command can enter (an AMQP face, a
legacy face, the hub port), the per-command log line likewise, and a reload that changes
a log file is refused and changes nothing. Real parts: RabbitMQ, clu's legacy shutter, an
in-process clu AMQP actor, a clu client, raw sockets on the legacy face and the hub port,
``/metrics`` read back with prometheus-client's parser."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import clu_actor, clu_client
from tests.relay.test_legacy_face import LegacyClient
from tests.service.helpers import http_get
from tests.service.test_metrics_endpoint import clu_send, samples
from tests.support.aio import aio_test
from tests.support.ports import free_port

SIDES = ("amqp", "legacy", "hub")


class Lines(logging.Handler):
    """The ``bridge.commands`` log lines, as they are written."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def received(port: int) -> dict[str, float]:
    """``bridge_commands_received_total`` by side, from ``/metrics`` (empty: not counted)."""
    status, _headers, body = await http_get(port, "/metrics")
    assert status == 200
    return {dict(labels)["side"]: v for (name, labels), v in samples(body.decode()).items()
            if name == "bridge_commands_received_total"}


@aio_test
async def test_reload_turns_counting_and_the_command_log_on_and_off(amqp_url, clu_shutter,
                                                                     tmp_path):
    hub_port, face_port, http_port = free_port(), free_port(), free_port()

    def config(metrics: bool, commands: bool, log_file: str | None = None):
        logs = {"commands": commands, **({"file": log_file} if log_file else {})}
        return parse_config({
            "name": "recount", "http": {"port": http_port}, "hub": {"port": hub_port},
            "metrics": {"enabled": metrics}, "logs": logs,
            "actors": {"shutter": {"lives": "legacy", "port": clu_shutter.port},
                       "recam": {"lives": "amqp", "legacy_port": face_port}}})

    logger = logging.getLogger("bridge.commands")
    lines, level = Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    mid = 0

    async def one_each() -> None:
        """One command on each side: AMQP -> shutter, legacy face -> recam, hub -> shutter."""
        nonlocal mid
        mid += 1
        assert (await clu_send(client, "shutter", "ping")).status.did_succeed
        assert (await face.command(f"me.you {mid} ping", mid))[-1].code == ":"
        hub.writer.write(f"me.you {mid} shutter ping\n".encode())
        end = await hub.line_matching(lambda l: l.startswith(f"me.you {mid} shutter ")
                                      and l.split()[3] in ":f")
        assert end.split()[3] == ":", end

    try:
        async with clu_actor(amqp_url, "recam"), \
                Bridge(config(False, True), amqp_url) as bridge, \
                clu_client(amqp_url, "recountclient") as client:
            await bridge.router.target("shutter").start(wait=True)
            face = await LegacyClient.connect(face_port)
            hub = await LegacyClient.connect(hub_port)
            try:
                await one_each()                        # counting off: nothing counted
                assert bridge.monitoring.metrics is None
                assert await received(http_port) == {}
                assert lines.lines == []

                diff = await bridge.reload(config(True, True))
                assert diff["settings"] == ["metrics on"]
                await one_each()
                assert await received(http_port) == dict.fromkeys(SIDES, 1)
                assert len(lines.lines) == 3 and all(" done in " in l for l in lines.lines)

                diff = await bridge.reload(config(True, False))
                assert diff["settings"] == ["command log off"]
                await one_each()
                assert await received(http_port) == dict.fromkeys(SIDES, 2)
                assert len(lines.lines) == 3             # counted, but no line

                diff = await bridge.reload(config(True, False))  # the same: nothing to say
                assert diff == {"added": [], "changed": [], "removed": []}

                with pytest.raises(ValueError, match="logs.file"):
                    await bridge.reload(config(False, False, str(tmp_path / "other.log")))
                assert bridge.config.metrics and bridge.monitoring.metrics is not None

                # The control actor's status counts too, until counting is turned off.
                status = await clu_send(client, "recount", "status")
                assert any("actorCommands" in r.message for r in status.replies)
                diff = await bridge.reload(config(False, False))
                assert diff["settings"] == ["metrics off"]
                await one_each()
                assert await received(http_port) == {}
                status = await clu_send(client, "recount", "status")
                assert not any("actorCommands" in r.message for r in status.replies)

                diff = await bridge.reload(config(True, True))  # again from zero
                assert diff["settings"] == ["metrics on"]
                await one_each()
                assert await received(http_port) == dict.fromkeys(SIDES, 1)
                assert len(lines.lines) == 6
            finally:
                face.close()
                hub.close()
                await asyncio.sleep(0)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
