"""The clu AMQP wire contract as plain data: names, headers, properties, JSON bodies.

Sans-IO: nothing here talks to a broker. ``bridge.amqp`` turns these values into
aio-pika messages and back.

Topology (as clu's ``AMQPActor``/``AMQPClient``): one topic exchange ``sdss_exchange``
(``auto_delete=True``, ``durable=False``); an actor consumes ``<actor>_commands``
bound to ``command.<actor>.#``; every client/actor owns ``<name>_replies`` bound to
``reply.#`` and so sees every reply. Commands go to ``command.<actor>``; replies go to
``reply.<commander_id>`` (the full dotted commander chain) or ``reply.broadcast``.

Commands: headers ``command_id``, ``commander_id``, ``internal``, ``write_to_log``;
properties ``content_type="text/json"``, ``correlation_id=command_id``, ``reply_to``;
body ``{"command_string": "..."}``. Replies: headers ``message_code``,
``commander_id``, ``command_id``, ``sender``, ``internal``; properties
``content_type="text/json"``, ``correlation_id`` (the command id, absent for
broadcasts), ``timestamp`` (UTC now); body a JSON object of keywords.

JSON and non-finite floats: clu encodes with Python's ``json.dumps`` defaults, so a NaN
or infinite float goes on the wire as the bare tokens ``NaN``/``Infinity``/
``-Infinity`` (not standard JSON), and clu clients decode them with ``json.loads``.
We do the same in both directions: :func:`decode_json` accepts those tokens and
:func:`encode_json` emits them, so a value round-trips exactly as between two clu
programs. (A strict-JSON consumer would reject such a message; so it would one from
clu itself.)

Task messages (clu ``send_task``: header ``task: true``, body ``{"task": NAME, ...}``)
are not supported by the bridge: :func:`decode_command` raises :class:`MessageError`
for them, and the endpoint answers the sender with an ``f`` error reply instead of
dropping the message silently (clu's own actor would broadcast an ``e`` for an unknown
task).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from .codes import REPLY_CODES

# -- topology --------------------------------------------------------------------------

EXCHANGE_NAME = "sdss_exchange"
EXCHANGE_TYPE = "topic"
EXCHANGE_AUTO_DELETE = True
EXCHANGE_DURABLE = False

CONTENT_TYPE = "text/json"
REPLIES_BINDING = "reply.#"
BROADCAST_ROUTING_KEY = "reply.broadcast"


def commands_queue_name(actor: str) -> str:
    """``<actor>_commands``: the queue an actor consumes its commands from."""
    return f"{actor}_commands"


def replies_queue_name(name: str) -> str:
    """``<name>_replies``: the queue a client (or actor) receives all replies on."""
    return f"{name}_replies"


def commands_binding(actor: str) -> str:
    """``command.<actor>.#``: binding of the commands queue (matches ``command.<actor>``)."""
    return f"command.{actor}.#"


def command_routing_key(actor: str) -> str:
    """``command.<actor>``: routing key of a command sent to ``actor``."""
    return f"command.{actor}"


#: AMQP short strings (routing keys, correlation ids) hold at most 255 bytes.
MAX_SHORT_STRING = 255


def fits_short_string(text: str) -> bool:
    """True if ``text`` can travel as an AMQP short string (at most 255 UTF-8 bytes)."""
    return len(text.encode("utf-8", "surrogatepass")) <= MAX_SHORT_STRING


def usable_commander_id(commander_id: str) -> bool:
    """True if replies can be routed to ``commander_id``: ``reply.<id>`` fits a routing key."""
    return fits_short_string(reply_routing_key(commander_id))


def reply_routing_key(commander_id: str | None, broadcast: bool = False) -> str:
    """``reply.<commander_id>`` or ``reply.broadcast`` (broadcast or no commander)."""
    if broadcast or commander_id is None:
        return BROADCAST_ROUTING_KEY
    return f"reply.{commander_id}"


def actor_replies_binding(actor: str) -> str:
    """``reply.#.<actor>``: the replies to every command sent to ``actor`` by a clu-style
    commander (commander ids ``<name>.<actor>``, chains ``<a>.<b>.<actor>``)."""
    return f"reply.#.{check_name(actor)}"


def replies_binding_for(commander_id: str, actor: str) -> str:
    """The narrowest binding that hears the replies to a command from ``commander_id``
    to ``actor``: :func:`actor_replies_binding` when the id ends with ``.<actor>``
    (clu's default and chains), ``reply.<commander_id>`` when that key is no pattern,
    else everything (``reply.#``)."""
    if commander_id == actor or commander_id.endswith("." + actor):
        return actor_replies_binding(actor)
    if any(word in ("*", "#") for word in commander_id.split(".")):
        return REPLIES_BINDING
    return reply_routing_key(commander_id)


def default_commander_id(sender: str, actor: str) -> str:
    """clu's default commander id for a command from ``sender`` to ``actor``."""
    return f"{sender}.{actor}"


def routing_failure_body(actor: str) -> dict[str, str]:
    """The error clu's client fabricates when no queue is bound for ``actor``."""
    return {"error": f"Failed routing message to consumer {actor!r}."}


def check_name(name: str) -> str:
    """Return ``name`` if it can be an actor/client name in routing keys, else raise.

    Names must be non-empty and free of ``.``, ``*``, ``#`` and whitespace, which
    would change what the topic bindings match.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid AMQP actor/client name {name!r}: must be a non-empty string")
    bad = [c for c in name if c in ".*#" or c.isspace()]
    if bad:
        raise ValueError(f"invalid AMQP actor/client name {name!r}: contains {bad[0]!r}")
    return name


# -- message codes ---------------------------------------------------------------------

STARTED = ">"
INFO = "i"
DEBUG = "d"
WARNING = "w"
ERROR = "e"
FAILED = "f"
DONE = ":"
CRITICAL = "!"

#: The codes clu defines (clu's ``MessageCode``); lower case on the AMQP side.
MESSAGE_CODES = frozenset(">idwef:!")
#: Codes that finish a command (clu: ``:`` DONE, ``f`` and ``!`` FAILED).
TERMINAL_CODES = frozenset(":f!")
FAILURE_CODES = frozenset("f!")


def is_terminal(code: str) -> bool:
    """True if a reply with ``code`` finishes its command."""
    return code in TERMINAL_CODES


def is_failure(code: str) -> bool:
    """True if a reply with ``code`` finishes its command unsuccessfully."""
    return code in FAILURE_CODES


def check_code(code: str) -> str:
    """Return ``code`` if clu knows it (``> i d w e f : !``), else raise ``ValueError``."""
    if code not in MESSAGE_CODES:
        raise ValueError(f"invalid clu message code {code!r}; expected one of > i d w e f : !")
    return code


def default_internal(code: str, command_internal: bool) -> bool:
    """clu's ``internal`` flag for a reply: ``>`` is always internal, others inherit."""
    return True if code == STARTED else command_internal


# -- JSON ------------------------------------------------------------------------------


def encode_json(obj: Any) -> bytes:
    """JSON bytes exactly as clu writes them (``json.dumps`` defaults, NaN allowed).

    Calls the C encoder ``json.dumps`` itself builds on every call (its defaults:
    ASCII, ``", "`` and ``": "``, circular references detected), made once: the same
    output and errors, without ``JSONEncoder.encode``/``iterencode`` per reply."""
    if _C_ENCODE is None or obj.__class__ is str:
        return json.dumps(obj).encode()
    try:
        return "".join(_C_ENCODE(obj, 0)).encode()
    except BaseException:
        _MARKERS.clear()  # an error leaves the circular-reference markers of its path
        raise


def command_body(command_string: str) -> bytes:
    """``encode_json({"command_string": command_string})`` without the general encoder
    (the same bytes: ``json.dumps`` writes a string with ``encode_basestring_ascii``)."""
    return b'{"command_string": %s}' % _encode_string(command_string).encode()


_encode_string = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
#: ``json.dumps``'s circular-reference markers for :data:`_C_ENCODE` (empty between calls:
#: the encoder removes what it adds; :func:`encode_json` clears them after an error).
_MARKERS: dict[int, Any] = {}
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
#: The C encoder with ``json.dumps``'s defaults (None where the C accelerator is missing).
_C_ENCODE = None if _c_make_encoder is None else _c_make_encoder(
    _MARKERS, json.JSONEncoder().default, _encode_string, None, ": ", ", ", False, False, True)
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")


def decode_json(data: bytes | str) -> Any:
    """Decode a JSON body; accepts ``NaN``/``Infinity`` as clu's encoder emits them.

    orjson first (several times faster) unless a run of 19 digits could be an integer
    beyond 64 bits (orjson makes it a float); what orjson refuses -- ``NaN``,
    ``Infinity``, lone surrogates, invalid input -- goes to the standard library's
    decoder too, so values and errors are the standard library's.
    """
    long_digits = _LONG_DIGITS_TEXT if isinstance(data, str) else _LONG_DIGITS
    if long_digits.search(data) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8")
    return json.loads(data)


# -- errors ----------------------------------------------------------------------------


class MessageError(ValueError):
    """A message that does not follow the clu contract.

    ``reason`` says what is wrong. For commands, ``command_id``/``commander_id``/
    ``internal`` hold what could still be recovered from the message, so that the
    sender can be answered (``None`` when unknown).
    """

    def __init__(
        self,
        reason: str,
        *,
        command_id: str | None = None,
        commander_id: str | None = None,
        internal: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.command_id = command_id
        self.commander_id = commander_id
        self.internal = internal

    @property
    def answerable(self) -> bool:
        """True if both ids are known, so an ``f`` reply can reach the commander."""
        return self.command_id is not None and self.commander_id is not None


def _text(value: Any) -> Any:
    """Header strings may arrive as bytes; decode them, leave other values alone."""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _nonempty_str(value: Any) -> str | None:
    value = _text(value)
    return value if isinstance(value, str) and value else None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _flag(headers: Mapping[str, Any], name: str, default: bool) -> bool | None:
    """A boolean header (``None``/absent -> default, 0/1 accepted); None if invalid."""
    value = headers.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


# -- commands --------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandMessage:
    """A clu command (client -> actor)."""

    command_id: str
    commander_id: str
    command_string: str
    internal: bool = False
    write_to_log: bool = True
    reply_to: str | None = None

    def headers(self) -> dict[str, Any]:
        """AMQP headers, in clu's order."""
        return {
            "command_id": self.command_id,
            "commander_id": self.commander_id,
            "internal": self.internal,
            "write_to_log": self.write_to_log,
        }

    def properties(self) -> dict[str, Any]:
        """AMQP message properties (keyword arguments of ``aio_pika.Message``)."""
        props: dict[str, Any] = {"content_type": CONTENT_TYPE, "correlation_id": self.command_id}
        if self.reply_to is not None:
            props["reply_to"] = self.reply_to
        return props

    def body(self) -> bytes:
        """JSON body ``{"command_string": ...}``."""
        return command_body(self.command_string)


def decode_command(
    headers: Mapping[str, Any] | None,
    body: bytes | str,
    correlation_id: str | None,
    reply_to: str | None = None,
) -> CommandMessage:
    """Validate and decode a delivery on an actor's commands queue.

    Raises :class:`MessageError` for: a ``task`` message, missing or non-string
    ``commander_id``/``command_id`` headers, ids too long for the replies' routing key
    or correlation id (AMQP short strings: 255 bytes), a body that is not JSON or not an object,
    a missing or non-string ``command_string``, one containing CR or LF, an empty one,
    and non-boolean ``internal``/``write_to_log`` headers.
    """
    headers = dict(headers or {})
    raw_commander = _text(headers.get("commander_id"))
    raw_command_id = _text(headers.get("command_id"))
    correlation_id = _nonempty_str(correlation_id)

    internal = _flag(headers, "internal", False)

    def error(reason: str) -> MessageError:
        # Answer where the reply can go: ids too long for AMQP short strings cannot be
        # the reply's routing key / correlation id (the broadcast then carries the f).
        commander = _nonempty_str(raw_commander)
        command_id = _nonempty_str(raw_command_id)
        return MessageError(
            reason,
            command_id=command_id if command_id and fits_short_string(command_id)
            else correlation_id,
            commander_id=commander if commander and usable_commander_id(commander) else None,
            internal=bool(internal),
        )

    if headers.get("task"):
        task = None
        try:
            decoded = decode_json(body)
            task = decoded.get("task") if isinstance(decoded, dict) else None
        except ValueError:
            pass
        raise error(f"task messages (task {task!r}) are not supported by this actor; send a command")

    if raw_commander is None:
        raise error("missing commander_id header")
    if not isinstance(raw_commander, str):
        raise error(f"commander_id header must be a string, not {_type_name(raw_commander)}")
    if not raw_commander:
        raise error("empty commander_id header")
    if raw_command_id is None:
        raise error("missing command_id header")
    if not isinstance(raw_command_id, str):
        raise error(f"command_id header must be a string, not {_type_name(raw_command_id)}")
    if not raw_command_id:
        raise error("empty command_id header")
    if not usable_commander_id(raw_commander):
        raise error(f"commander_id header too long: reply.<commander_id> must fit an AMQP "
                    f"routing key ({MAX_SHORT_STRING} bytes)")
    if not fits_short_string(raw_command_id):
        raise error(f"command_id header too long: replies carry it as their correlation id "
                    f"({MAX_SHORT_STRING} bytes at most)")
    if internal is None:
        raise error(f"internal header must be a boolean, not {_type_name(headers.get('internal'))}")
    write_to_log = _flag(headers, "write_to_log", True)
    if write_to_log is None:
        raise error(
            f"write_to_log header must be a boolean, not {_type_name(headers.get('write_to_log'))}"
        )

    try:
        decoded = decode_json(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"message body is not valid JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise error(f"message body must be a JSON object, not {_type_name(decoded)}")
    if "command_string" not in decoded:
        raise error("message body has no command_string")
    command_string = decoded["command_string"]
    if not isinstance(command_string, str):
        raise error(f"command_string must be a string, not {_type_name(command_string)}")
    if "\r" in command_string or "\n" in command_string:
        raise error("command_string must not contain CR or LF characters")
    if not command_string.strip():
        raise error("empty command_string")

    return CommandMessage(
        command_id=raw_command_id,
        commander_id=raw_commander,
        command_string=command_string,
        internal=internal,
        write_to_log=write_to_log,
        reply_to=_nonempty_str(reply_to),
    )


# -- replies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyMessage:
    """A clu reply (actor -> every client).

    ``broadcast`` selects the routing key ``reply.broadcast`` (it is not a header);
    a reply without ``commander_id`` is always a broadcast.
    """

    message_code: str
    commander_id: str | None
    command_id: str | None
    sender: str | None
    internal: bool = False
    body: dict[str, Any] = field(default_factory=dict)
    broadcast: bool = False
    timestamp: datetime | None = None

    @classmethod
    def for_command(
        cls,
        command: CommandMessage,
        code: str,
        body: Mapping[str, Any] | None,
        sender: str,
        internal: bool | None = None,
    ) -> ReplyMessage:
        """A reply to ``command``; ``internal=None`` follows clu (``>`` internal, else inherit)."""
        check_code(code)
        return cls(
            message_code=code,
            commander_id=command.commander_id,
            command_id=command.command_id,
            sender=sender,
            internal=default_internal(code, command.internal) if internal is None else internal,
            body=dict(body or {}),
        )

    @classmethod
    def broadcast_reply(
        cls, code: str, body: Mapping[str, Any] | None, sender: str, internal: bool = False
    ) -> ReplyMessage:
        """A reply not tied to a command: ``reply.broadcast``, null ids."""
        check_code(code)
        return cls(code, None, None, sender, internal, dict(body or {}), broadcast=True)

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.message_code)

    @property
    def is_failure(self) -> bool:
        return is_failure(self.message_code)

    def routing_key(self) -> str:
        """``reply.<commander_id>`` or ``reply.broadcast``."""
        return reply_routing_key(self.commander_id, self.broadcast)

    def headers(self) -> dict[str, Any]:
        """AMQP headers exactly as clu's actor writes them (nulls included)."""
        return {
            "message_code": self.message_code,
            "commander_id": self.commander_id,
            "command_id": self.command_id,
            "sender": self.sender,
            "internal": self.internal,
        }

    def properties(self, now: datetime | None = None) -> dict[str, Any]:
        """``content_type``, ``correlation_id`` (None for no command) and ``timestamp``."""
        return {
            "content_type": CONTENT_TYPE,
            "correlation_id": str(self.command_id) if self.command_id is not None else None,
            "timestamp": now or self.timestamp or datetime.now(timezone.utc),
        }

    def body_bytes(self) -> bytes:
        """The JSON body (``NaN``/``Infinity`` emitted as clu does)."""
        return encode_json(self.body)


def decode_reply(
    headers: Mapping[str, Any] | None,
    body: bytes | str,
    correlation_id: str | None,
    routing_key: str | None = None,
    timestamp: datetime | None = None,
) -> ReplyMessage:
    """Validate and decode a delivery on a replies queue, with clu's ``AMQPReply`` rules.

    Invalid (:class:`MessageError`): no or empty ``message_code``, or one that is no
    reply code (clu's ``> i d w e f : !``, or the upper-case ``I W D E F`` some
    publishers pass on from legacy actors); a truthy
    ``command_id`` header that differs from the correlation id (so an integer id
    ``5`` against ``"5"`` is invalid, as in clu); a body that is not a JSON object.
    A missing ``sender`` is allowed (``None``). The reply's ``command_id`` is the
    correlation id, as clu matches replies by correlation id.
    """
    headers = dict(headers or {})
    code = _text(headers.get("message_code"))
    if code is None or str(code) == "":
        raise MessageError("reply has no message_code header")
    code = str(code)
    if code not in REPLY_CODES:  # it would reach legacy clients as a broken reply line
        raise MessageError(f"reply message_code {code!r} is not a reply code")
    correlation_id = _text(correlation_id)
    header_command_id = _text(headers.get("command_id"))
    if header_command_id and header_command_id != correlation_id:
        raise MessageError(
            f"reply command_id header {header_command_id!r} differs from its "
            f"correlation_id {correlation_id!r}"
        )
    try:
        decoded = decode_json(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"reply body is not valid JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise MessageError(f"reply body must be a JSON object, not {_type_name(decoded)}")
    sender = _text(headers.get("sender"))
    commander_id = _text(headers.get("commander_id"))
    return ReplyMessage(
        message_code=code,
        commander_id=commander_id if commander_id is None else str(commander_id),
        command_id=correlation_id,
        sender=sender if sender is None else str(sender),
        internal=bool(headers.get("internal", False)),
        body=decoded,
        broadcast=routing_key == BROADCAST_ROUTING_KEY,
        timestamp=timestamp,
    )
