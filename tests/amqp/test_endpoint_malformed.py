"""Misbehaving clients: every malformed delivery gets a clear `f`, and the endpoint keeps serving."""

from __future__ import annotations

import json
import logging
from typing import Any

import aio_pika
import pytest
from clu import CommandStatus as CluStatus

from tests.amqp.helpers import (
    clu_client,
    clu_command,
    commander,
    endpoint,
    raw_publisher,
    wire_spy,
)
from tests.support.aio import aio_test

def aio_pika_json(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    return json.loads(message.body)


GOOD_HEADERS = {"command_id": "cid-1", "commander_id": "rawclient.bridged", "internal": False}

# (case id, headers, body, correlation_id, expected words in the error)
CASES: list[tuple[str, dict[str, Any] | None, bytes, str | None, str]] = [
    ("non-json", GOOD_HEADERS, b"ping", "cid-1", "not valid JSON"),
    ("not-utf8", GOOD_HEADERS, b"\xff\xfe", "cid-1", "not valid JSON"),
    ("not-an-object", GOOD_HEADERS, b'["ping"]', "cid-1", "must be a JSON object, not list"),
    ("no-command-string", GOOD_HEADERS, b'{"cmd": "ping"}', "cid-1", "no command_string"),
    ("non-string-command", GOOD_HEADERS, b'{"command_string": 42}', "cid-1", "must be a string, not int"),
    ("lf", GOOD_HEADERS, b'{"command_string": "ping\\nstatus"}', "cid-1", "CR or LF"),
    ("cr", GOOD_HEADERS, b'{"command_string": "ping\\r"}', "cid-1", "CR or LF"),
    ("empty", GOOD_HEADERS, b'{"command_string": ""}', "cid-1", "empty command_string"),
    ("blank", GOOD_HEADERS, b'{"command_string": "   "}', "cid-1", "empty command_string"),
    ("no-command-id", {"commander_id": "rawclient.bridged"}, b'{"command_string": "ping"}',
     "cid-1", "missing command_id header"),
    ("int-command-id", {**GOOD_HEADERS, "command_id": 5}, b'{"command_string": "ping"}',
     "cid-1", "command_id header must be a string, not int"),
    ("bad-internal", {**GOOD_HEADERS, "internal": "yes"}, b'{"command_string": "ping"}',
     "cid-1", "internal header must be a boolean"),
    ("task", {"commander_id": "rawclient.bridged", "task": True}, b'{"task": "do_it", "x": 1}',
     "cid-1", "task messages (task 'do_it') are not supported"),
]


@pytest.mark.parametrize(
    ("headers", "body", "correlation_id", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
@aio_test
async def test_malformed_command_is_answered_to_its_commander(
    amqp_url: str, headers: dict[str, Any], body: bytes, correlation_id: str, expected: str
) -> None:
    async with (
        wire_spy(amqp_url) as spy,
        endpoint(amqp_url, "bridged"),
        raw_publisher(amqp_url) as exchange,
        clu_client(amqp_url, "cluclient") as client,
    ):
        await exchange.publish(
            aio_pika.Message(body, headers=headers, correlation_id=correlation_id,
                             content_type="text/json"),
            routing_key="command.bridged",
        )
        (reply,) = await spy.wait_for(lambda m: m.correlation_id == "cid-1")
        # ... and the endpoint still serves a well-formed command afterwards.
        ping = await clu_command(client, "bridged", "ping")
    assert reply.routing_key == "reply.rawclient.bridged"
    assert reply.headers == {
        "message_code": "f", "commander_id": "rawclient.bridged", "command_id": "cid-1",
        "sender": "bridged", "internal": False,
    }
    assert reply.content_type == "text/json"
    error = aio_pika_json(reply)["error"]
    assert expected in error and "bridged_commands" in error
    assert ping.status == CluStatus.DONE


@aio_test
async def test_message_without_any_ids_is_broadcast_and_logged(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        wire_spy(amqp_url) as spy,
        endpoint(amqp_url, "bridged"),
        raw_publisher(amqp_url) as exchange,
    ):
        with caplog.at_level(logging.ERROR, logger="bridge.amqp.endpoint"):
            await exchange.publish(aio_pika.Message(b"garbage"), routing_key="command.bridged")
            (reply,) = await spy.wait_for(lambda m: m.routing_key == "reply.broadcast")
    assert reply.headers == {
        "message_code": "f", "commander_id": None, "command_id": None,
        "sender": "bridged", "internal": False,
    }
    assert reply.correlation_id is None
    assert "missing commander_id header" in aio_pika_json(reply)["error"]
    assert any("missing commander_id" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("body", [b'{"command_string": "ping"}', b"{}"], ids=["ok", "bad"])
@aio_test
async def test_commander_id_too_long_for_a_routing_key_gets_a_broadcast_f(
    amqp_url: str, body: bytes
) -> None:
    """``reply.<300 x>`` cannot be a routing key: the f goes to ``reply.broadcast``."""
    async with (
        wire_spy(amqp_url) as spy,
        endpoint(amqp_url, "bridged"),
        raw_publisher(amqp_url) as exchange,
    ):
        await exchange.publish(
            aio_pika.Message(body, headers={"command_id": "long-1", "commander_id": "x" * 300},
                             correlation_id="long-1"),
            routing_key="command.bridged")
        (reply,) = await spy.wait_for(lambda m: m.routing_key == "reply.broadcast")
    assert reply.headers["message_code"] == "f"
    assert reply.headers["commander_id"] is None and reply.correlation_id is None
    assert "too long" in aio_pika_json(reply)["error"]


@aio_test
async def test_commander_refuses_ids_that_amqp_cannot_carry(amqp_url: str) -> None:
    async with commander(amqp_url, "longcmdr") as cmdr:
        with pytest.raises(ValueError, match="commander id too long"):
            await cmdr.send_command("bridged", "ping", commander_id="APO." + "j" * 260)
        with pytest.raises(ValueError, match="command id too long"):
            await cmdr.send_command("bridged", "ping", command_id="c" * 256)
        assert not cmdr.running


@aio_test
async def test_clu_client_empty_command_fails_instead_of_hanging(amqp_url: str) -> None:
    """A clu actor never answers an empty command; our endpoint fails it."""
    async with endpoint(amqp_url, "bridged"), clu_client(amqp_url, "cluclient") as client:
        cmd = await clu_command(client, "bridged", "")
    assert cmd.status == CluStatus.FAILED
    assert "empty command_string" in cmd.replies[-1].message["error"]


@aio_test
async def test_clu_send_task_is_rejected_with_an_error_reply(amqp_url: str) -> None:
    async with (
        wire_spy(amqp_url) as spy,
        endpoint(amqp_url, "bridged"),
        clu_client(amqp_url, "cluclient") as client,
    ):
        await client.send_task("bridged", "expose", {"exptime": 1})
        (reply,) = await spy.wait_for(lambda m: m.routing_key == "reply.cluclient.bridged")
        ping = await clu_command(client, "bridged", "ping")
    assert reply.headers["message_code"] == "f"
    assert reply.headers["command_id"] == reply.correlation_id  # clu's client accepts it
    assert "task messages (task 'expose') are not supported" in aio_pika_json(reply)["error"]
    assert ping.status == CluStatus.DONE
