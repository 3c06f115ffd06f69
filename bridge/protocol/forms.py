"""The three reply-line forms and their JSON description (the `bridge parse` contract)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from .errors import ProtocolError
from .canonical import needs_quotes
from .jsonmap import json_to_keyword, json_to_keywords, value_to_json
from .lines import format_actor_reply, format_hub_reply, parse_actor_reply, parse_hub_reply
from .model import ActorReply, HubReply, Keyword

#: Reply-line forms: actor side (``cid mid code``), actor side mid first, hub side.
FORMS = ("actor", "actor-midfirst", "hub")


def parse_line(line: str, form: str = "actor") -> ActorReply | HubReply:
    """Parse a reply line in one of :data:`FORMS`."""
    if form == "hub":
        return parse_hub_reply(line)
    if form in ("actor", "actor-midfirst"):
        return parse_actor_reply(line, mid_first=form == "actor-midfirst")
    raise ValueError(f"unknown form {form!r}; expected one of {', '.join(FORMS)}")


def describe(reply: ActorReply | HubReply, form: str) -> dict[str, Any]:
    """The stable JSON description of a parsed reply (fields a form lacks are null)."""
    if type(reply) is HubReply:
        commander, mid, actor, code, keywords = reply
        cid = None
    else:
        cid, mid, code, keywords = reply
        commander = actor = None
    return {
        "ok": True,
        "form": form,
        "commander": commander,
        "mid": mid,
        "cid": cid,
        "actor": actor,
        "code": code,
        "keywords": [
            {"name": name, "values": list(values),
             "json": _json(values[0], quoted[0]) if len(values) == 1
             else list(map(_json, values, quoted))}
            for name, values, quoted in keywords
        ],
    }


_json = value_to_json

#: The ``error`` of a blank line's description (empty, or only spaces and tabs).
BLANK_LINE = "blank line"


def describer(form: str) -> Callable[[str], dict[str, Any]]:
    """A function ``line -> description`` for one form: :func:`describe_line` with the
    form's parser looked up once (what `bridge parse` calls for every line)."""
    try:
        parse = _PARSERS[form]
    except KeyError:
        raise ValueError(f"unknown form {form!r}; expected one of {', '.join(FORMS)}") from None

    def describe_one(line: str) -> dict[str, Any]:
        if line[-1:] in _EOL:
            line = line.rstrip("\r\n")
        try:
            return describe(parse(line), form)
        except ProtocolError as exc:
            if not line.strip(" \t"):
                return blank_description(line)
            return {"ok": False, "error": exc.reason, "position": exc.position, "line": line}
    return describe_one


def describe_line(line: str, form: str = "actor") -> dict[str, Any]:
    """Parse and describe one line; a malformed line gives ``{"ok": false, ...}``.

    A blank line (empty, or only spaces and tabs, after any CR/LF at its end) is
    not a reply: it gives ``{"ok": false, "error": "blank line", "position":
    len(line), "line": line}``, so that a stream of descriptions lines up with its
    input line for line.
    """
    return describer(form)(line)


def blank_description(line: str = "") -> dict[str, Any]:
    """The description of a blank line (see :func:`describe_line`)."""
    return {"ok": False, "error": BLANK_LINE, "position": len(line), "line": line}


def is_blank_description(obj: Mapping[str, Any]) -> bool:
    """True for the description of a blank line (``bridge format`` writes it back as one)."""
    line = obj.get("line")
    return (obj.get("ok") is False and obj.get("error") == BLANK_LINE
            and isinstance(line, str) and not line.strip(" \t"))


_EOL = ("\r", "\n")
_PARSERS: dict[str, Callable[[str], ActorReply | HubReply]] = {
    "actor": parse_actor_reply,
    "actor-midfirst": partial(parse_actor_reply, mid_first=True),
    "hub": parse_hub_reply,
}


def keywords_from_description(keywords: Any) -> tuple[Keyword, ...]:
    """Keywords from a description: a list of ``{name, values|json}`` or a JSON body object."""
    if isinstance(keywords, Mapping):
        return json_to_keywords(keywords)
    out = []
    for item in keywords or ():
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ValueError("each keyword needs a string 'name'")
        if "values" in item:
            out.append(_keyword_from_values(item["name"], item["values"], item.get("json")))
        elif "json" in item:
            out.append(json_to_keyword(item["name"], item["json"]))
        else:
            out.append(Keyword(item["name"]))
    return tuple(out)


def _keyword_from_values(name: str, values: Any, json_value: Any) -> Keyword:
    """Keep the exact value texts; quote a value when its bare reading would not give its JSON."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("'values' must be a list of strings")
    if json_value is None and len(values) != 1:
        expected: list[Any] = [value_to_json(v) for v in values]
    else:
        expected = json_value if len(values) != 1 else [json_value]
        if not isinstance(expected, list) or len(expected) != len(values):
            raise ValueError(f"keyword {name!r}: 'json' does not match 'values'")
    quoted = tuple(
        needs_quotes(v) or not _same(value_to_json(v), j) for v, j in zip(values, expected)
    )
    return Keyword(name, tuple(values), quoted)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def format_description(obj: Mapping[str, Any], form: str | None = None) -> str:
    """The reply line for a description (the inverse of :func:`describe`)."""
    form = form or obj.get("form") or "actor"
    keywords = keywords_from_description(obj.get("keywords", ()))
    code = obj.get("code")
    if not isinstance(code, str) or len(code) != 1:
        raise ValueError("'code' must be one reply code character")
    mid = _int(obj, "mid")
    if form == "hub":
        commander, actor = obj.get("commander"), obj.get("actor")
        if not isinstance(commander, str) or not isinstance(actor, str):
            raise ValueError("hub form needs string 'commander' and 'actor'")
        return format_hub_reply(HubReply(commander, mid, actor, code, keywords))
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}")
    return format_actor_reply(ActorReply(_int(obj, "cid"), mid, code, keywords),
                              mid_first=form == "actor-midfirst")


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key, 0)
    if value is None:
        value = 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"'{key}' must be a non-negative integer")
    return value
