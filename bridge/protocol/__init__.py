"""Sans-IO core of the opscore/Tron line protocol: parse, format, translate. No I/O here.

Everything a transport needs is re-exported from this package:

* lines: :func:`parse_actor_reply`, :func:`parse_hub_reply`, :func:`parse_actor_command`,
  :func:`parse_hub_command` and their ``format_*`` counterparts;
* keywords: :func:`parse_keywords`, :func:`parse_keywords_lenient`, :func:`format_keywords`;
* JSON: :func:`keywords_to_json`, :func:`json_to_keywords` (the untyped mapping);
* errors: :class:`ProtocolError`, the only exception raised for malformed input.
"""

from .canonical import format_keyword, format_keywords, format_value, needs_quotes, quote
from .codes import FAILURE_CODES, REPLY_CODES, TERMINAL_CODES, is_failure, is_terminal
from .errors import ProtocolError
from .jsonmap import (
    json_to_keyword,
    json_to_keywords,
    json_to_value,
    keyword_to_json,
    keywords_to_json,
    value_to_json,
)
from .keywords import UNPARSED, parse_keywords, parse_keywords_lenient
from .lines import (
    format_actor_command,
    format_actor_reply,
    format_hub_command,
    format_hub_reply,
    parse_actor_command,
    parse_actor_reply,
    parse_hub_command,
    parse_hub_reply,
)
from .model import ActorCommand, ActorReply, CommandBody, HubCommand, HubReply, Keyword

__all__ = [
    "ActorCommand", "ActorReply", "CommandBody", "HubCommand", "HubReply", "Keyword",
    "ProtocolError", "UNPARSED", "REPLY_CODES", "TERMINAL_CODES", "FAILURE_CODES",
    "is_terminal", "is_failure",
    "parse_keywords", "parse_keywords_lenient", "format_keyword", "format_keywords",
    "format_value", "needs_quotes", "quote",
    "parse_actor_reply", "parse_hub_reply", "parse_actor_command", "parse_hub_command",
    "format_actor_reply", "format_hub_reply", "format_actor_command", "format_hub_command",
    "value_to_json", "keyword_to_json", "keywords_to_json",
    "json_to_value", "json_to_keyword", "json_to_keywords",
]
