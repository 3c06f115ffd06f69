"""The ``bridge.commands`` log line of a command is written after its terminal reply
has left: a command that ends inside a held stretch (its ``>`` and ``:`` read together)
logs when the stretch has written them, so the log write is not on the reply's path."""

from __future__ import annotations

import logging

import pytest

from bridge import writes
from bridge.core import CommandHandle, Reply
from bridge.service.metrics import BridgeMetrics


def test_a_command_ending_in_a_held_stretch_is_logged_after_its_replies_are_written(
        caplog: pytest.LogCaptureFixture) -> None:
    order: list[str] = []
    sent = writes.HeldBytes(lambda data: order.append(f"written {data.decode()}"), "test")

    def relay(reply: Reply) -> None:
        if not sent.keep(reply.code.encode()):
            order.append(f"written {reply.code}")

    class Recording(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            order.append("logged " + record.getMessage())

    handler = Recording()
    logging.getLogger("bridge.commands").addHandler(handler)
    caplog.set_level(logging.INFO, "bridge.commands")
    try:
        metrics = BridgeMetrics(command_log=True)
        held = CommandHandle("shutter", "ping", callback=relay)
        metrics.track("shutter", "amqp", held, "client", 7)
        with writes.held():
            held.add_reply(Reply(">", "shutter"))
            held.add_reply(Reply(":", "shutter"))
            assert order == []  # neither written nor logged inside the stretch
        assert order[0] == "written >:" and order[1].startswith("logged shutter amqp from client")
        assert len(order) == 2
        plain = CommandHandle("shutter", "ping", callback=relay)
        metrics.track("shutter", "amqp", plain, "client", 8)
        plain.add_reply(Reply(":", "shutter"))  # outside a stretch: written, then logged
        assert order[2] == "written :" and order[3].startswith("logged shutter amqp")
        assert "id=8" in order[3] and "'ping'" in order[3]
    finally:
        logging.getLogger("bridge.commands").removeHandler(handler)
