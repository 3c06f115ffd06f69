"""aio-pika AMQP side: the clu contract (exchange, queues, headers, JSON bodies).

* :class:`AmqpConnection` -- robust connection, clu exchange, disconnect/reconnect
  listeners (``connection.py``);
* :class:`ActorEndpoint` / :class:`IncomingCommand` -- serve commands as a clu
  ``AMQPActor`` does (``endpoint.py``);
* :class:`AmqpCommander` -- command actors and hear all replies as a clu ``AMQPClient``
  does (``commander.py``); its commands are :class:`bridge.core.CommandHandle` objects
  and its replies :class:`bridge.core.Reply` objects, as on every other side;
* ``wire.py`` -- conversion between :mod:`bridge.protocol.clu_messages` values,
  aio-pika messages and :class:`bridge.core.Reply` (``reply_from_message``).
"""

from bridge.amqp.commander import AmqpCommander, CommanderNameInUse, ReplyListener
from bridge.amqp.connection import (
    AmqpChannel,
    AmqpConnection,
    AmqpError,
    AmqpUnavailable,
    QueueInUse,
    Unroutable,
)
from bridge.amqp.endpoint import ActorEndpoint, ActorNameInUse, IncomingCommand
from bridge.amqp.wire import reply_from_message

__all__ = [
    "ActorEndpoint",
    "ActorNameInUse",
    "AmqpChannel",
    "AmqpCommander",
    "AmqpConnection",
    "AmqpError",
    "AmqpUnavailable",
    "CommanderNameInUse",
    "IncomingCommand",
    "QueueInUse",
    "ReplyListener",
    "Unroutable",
    "reply_from_message",
]
