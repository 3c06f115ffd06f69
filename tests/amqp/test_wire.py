"""reply_from_message: a clu reply as the bridge's transport-agnostic Reply."""

from __future__ import annotations

from bridge.amqp.wire import reply_from_message
from bridge.protocol.clu_messages import ReplyMessage


def test_reply_from_message_keeps_every_field_and_the_body_as_json() -> None:
    message = ReplyMessage(":", "APO.john.camera", "cid-7", "camera", internal=True,
                           body={"temp": -1.5, "filters": ["g", "r"]})
    reply = reply_from_message(message)
    assert (reply.code, reply.sender, reply.commander, reply.command_id, reply.internal) == (
        ":", "camera", "APO.john.camera", "cid-7", True)
    assert reply.json == {"temp": -1.5, "filters": ["g", "r"]}
    assert reply.is_terminal and not reply.is_failure
    assert [k.name for k in reply.keywords] == ["temp", "filters"]


def test_broadcast_reply_has_no_command() -> None:
    reply = reply_from_message(ReplyMessage.broadcast_reply("i", {"text": "hola"}, "camera"))
    assert reply.commander is None and reply.command_id is None
    assert reply.json == {"text": "hola"} and reply.internal is False
