"""aio-pika AMQP side: the clu contract (exchange, queues, headers, JSON bodies).

* :class:`AmqpConnection` -- robust connection, clu exchange, disconnect/reconnect
  listeners (``connection.py``);
* :class:`ActorEndpoint` / :class:`IncomingCommand` -- serve commands as a clu
  ``AMQPActor`` does (``endpoint.py``);
* :class:`AmqpCommander` / :class:`AmqpCommandHandle` -- command actors and hear all
  replies as a clu ``AMQPClient`` does (``commander.py``);
* ``wire.py`` -- conversion between :mod:`bridge.protocol.clu_messages` values and
  aio-pika messages.
"""

from bridge.amqp.commander import (
    AmqpCommander,
    AmqpCommandHandle,
    CommanderNameInUse,
    CommandStatus,
)
from bridge.amqp.connection import (
    AmqpChannel,
    AmqpConnection,
    AmqpError,
    AmqpUnavailable,
    QueueInUse,
    Unroutable,
)
from bridge.amqp.endpoint import ActorEndpoint, ActorNameInUse, IncomingCommand

__all__ = [
    "ActorEndpoint",
    "ActorNameInUse",
    "AmqpChannel",
    "AmqpCommandHandle",
    "AmqpCommander",
    "AmqpConnection",
    "AmqpError",
    "AmqpUnavailable",
    "CommandStatus",
    "CommanderNameInUse",
    "IncomingCommand",
    "QueueInUse",
    "Unroutable",
]
