"""Transport-agnostic core: replies, commands in flight, id mapping and routing.

Both the legacy (Twisted TCP) side and the AMQP side build on these, so that
"a command has exactly one terminal reply" is implemented once.
"""

from .commands import (
    TIMED_OUT,
    CommandHandle,
    CommandObserver,
    CommandReplyListener,
    CommandStatus,
    CommandTable,
    IssuedCommands,
    ReplyCallback,
)
from .ids import MAX_MID, MidAllocator
from .keycache import CachedKeyword, KeywordCache, KeywordCallback
from .replies import Reply, error_keywords, failure
from .routing import CommandTarget, PreferAmqpTarget, Route, Router, RoutingTable, no_target

__all__ = [
    "CommandHandle", "CommandObserver", "CommandReplyListener", "CommandStatus", "CommandTable",
    "IssuedCommands", "ReplyCallback", "TIMED_OUT",
    "MidAllocator", "MAX_MID", "Reply", "error_keywords", "failure",
    "CachedKeyword", "KeywordCache", "KeywordCallback",
    "CommandTarget", "PreferAmqpTarget", "Route", "Router", "RoutingTable", "no_target",
]
