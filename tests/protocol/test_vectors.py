"""Run every conformance vector in protocol_specs/vectors/ against the protocol core.

The vector files are the contract (schema: protocol_specs/README.md). They were
generated once from our parser, reviewed by hand against the raw TCC log and the
reference parsers, and corrected where the code was wrong; a failing case here
means the code (or, after a deliberate decision, the vector) must change.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bridge.protocol import (
    ActorCommand,
    HubCommand,
    Keyword,
    ProtocolError,
    format_actor_command,
    format_actor_reply,
    format_hub_command,
    format_hub_reply,
    format_keywords,
    json_to_keywords,
    keywords_to_json,
    parse_actor_command,
    parse_actor_reply,
    parse_hub_command,
    parse_hub_reply,
    parse_keywords,
    parse_keywords_lenient,
)
from bridge.protocol.fastpath import parse_keywords_fast
from bridge.protocol.grammar import parse_keywords_grammar

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol_specs" / "vectors"
TCC_LOG = ROOT / "examples" / "tcc_sample.log"


@cache
def load(name: str) -> dict[str, Any]:
    """One vector file, parsed."""
    with open(VECTORS / name, encoding="utf-8") as f:
        return json.load(f)


def cases(name: str, key: str = "cases") -> list[Any]:
    """The cases of a vector file as pytest params named by their ids."""
    return [pytest.param(c, id=c["id"]) for c in load(name)[key]]


def keywords_as_vector(keywords: tuple[Keyword, ...]) -> list[dict[str, Any]]:
    """Keywords in the vector files' shape."""
    return [{"name": k.name, "values": list(k.values), "quoted": list(k.quoted)} for k in keywords]


def keywords_from_vector(items: list[dict[str, Any]]) -> tuple[Keyword, ...]:
    return tuple(Keyword(i["name"], tuple(i["values"]), tuple(i["quoted"])) for i in items)


def same_json(a: Any, b: Any) -> bool:
    """Equality that also compares types (True is not 1, 1 is not 1.0) and key order."""
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(same_json(a[k], b[k]) for k in a))
    if isinstance(a, list):
        return (isinstance(b, list) and len(a) == len(b)
                and all(same_json(x, y) for x, y in zip(a, b)))
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


# --- keyword lists -----------------------------------------------------------------------


def test_every_edge_table_row_has_a_vector():
    ids = {c["id"] for c in load("keywords.json")["cases"]}
    assert {f"edge-{n:02d}" for n in range(1, 61)} <= ids


@pytest.mark.parametrize("case", cases("keywords.json"))
def test_keyword_vector(case: dict[str, Any]) -> None:
    text = case["input"]
    if "error" in case:
        with pytest.raises(ProtocolError) as info:
            parse_keywords(text)
        assert info.value.position == case["error"]["position"]
        assert info.value.line == text
        assert "keywords" not in case
    else:
        keywords = parse_keywords(text)
        assert keywords_as_vector(keywords) == case["keywords"]
        assert format_keywords(keywords) == case["canonical"]
        assert same_json(keywords_to_json(keywords), case["json"])
    assert format_keywords(parse_keywords_lenient(text)) == case["lenient"]


@pytest.mark.parametrize("case", cases("keywords.json"))
def test_keyword_vector_grammar_and_fast_path_agree(case: dict[str, Any]) -> None:
    """The pyparsing grammar alone gives the vector's answer; the fast path never contradicts it."""
    text = case["input"]
    fast = parse_keywords_fast(text)
    if "error" in case:
        assert fast is None
        with pytest.raises(ProtocolError) as info:
            parse_keywords_grammar(text)
        assert info.value.position == case["error"]["position"]
    else:
        expected = keywords_from_vector(case["keywords"])
        assert parse_keywords_grammar(text) == expected
        assert fast is None or fast == expected


@pytest.mark.parametrize("case", [c for c in cases("keywords.json") if "canonical" in c.values[0]])
def test_canonical_text_is_a_fixed_point(case: dict[str, Any]) -> None:
    """The canonical text parses back to the same JSON and formats to itself."""
    again = parse_keywords(case["canonical"])
    assert format_keywords(again) == case["canonical"]
    assert same_json(keywords_to_json(again), case["json"])


@pytest.mark.parametrize("case", [c for c in cases("keywords.json") if "tron_hub" in c.values[0]])
def test_lenient_versus_tron_hub(case: dict[str, Any]) -> None:
    """How our lenient re-emission compares with the Tron hub's (legacy-protocol §4.9).

    ``same-text``: identical text; ``same-keywords``: tron's text parses to exactly our
    keywords (tron kept the actor's quoting, we re-quote); ``differs``: documented in
    protocol_specs/keywords.md.
    """
    ours = parse_keywords_lenient(case["input"])
    tron = case["tron_hub"]
    if format_keywords(ours) == tron:
        found = "same-text"
    elif parse_keywords(tron) == ours:
        found = "same-keywords"
    else:
        found = "differs"
    assert found == case["lenient_vs_tron"]


# --- reply lines -------------------------------------------------------------------------


def actor_reply_as_vector(reply) -> dict[str, Any]:
    return {"cid": reply.cid, "mid": reply.mid, "code": reply.code,
            "keywords": keywords_as_vector(reply.keywords)}


def hub_reply_as_vector(reply) -> dict[str, Any]:
    return {"commander": reply.commander, "mid": reply.mid, "actor": reply.actor,
            "code": reply.code, "keywords": keywords_as_vector(reply.keywords)}


@pytest.mark.parametrize("case", cases("actor_replies.json"))
def test_actor_reply_vector(case: dict[str, Any]) -> None:
    line, mid_first = case["line"], case["mid_first"]
    if "error" in case:
        with pytest.raises(ProtocolError) as info:
            parse_actor_reply(line, mid_first=mid_first)
        assert info.value.position == case["error"]["position"]
        return
    reply = parse_actor_reply(line, mid_first=mid_first)
    assert actor_reply_as_vector(reply) == case["expected"]
    formatted = format_actor_reply(reply, mid_first=mid_first)
    assert formatted == case["formatted"]
    assert parse_actor_reply(formatted, mid_first=mid_first) == reply


@pytest.mark.parametrize("case", cases("hub_replies.json"))
def test_hub_reply_vector(case: dict[str, Any]) -> None:
    line = case["line"]
    if "error" in case:
        with pytest.raises(ProtocolError) as info:
            parse_hub_reply(line)
        assert info.value.position == case["error"]["position"]
        return
    reply = parse_hub_reply(line)
    assert hub_reply_as_vector(reply) == case["expected"]
    formatted = format_hub_reply(reply)
    assert formatted == case["formatted"]
    assert parse_hub_reply(formatted) == reply


def _log_replies() -> list[str]:
    """The replies of examples/tcc_sample.log without their timestamps."""
    with open(TCC_LOG, encoding="ascii", newline="") as f:
        lines = f.read().split("\n")
    assert lines[-1] == "", "the log ends with a newline"
    return [line.split(" ", 2)[2] for line in lines[:-1]]


def test_every_log_line_is_a_vector_in_both_forms():
    replies = _log_replies()
    assert len(replies) == 143
    actor = {c["id"]: c for c in load("actor_replies.json")["cases"]}
    hub = {c["id"]: c for c in load("hub_replies.json")["cases"]}
    for n, reply in enumerate(replies, 1):
        vector = actor[f"log-{n:03d}"]
        assert vector["line"] == reply and vector["mid_first"] is True
        mid, cid, rest = reply.split(" ", 2)
        # opscore's logparse.py: "telrun.user<cid> <mid> tcc <code><rest>"
        assert hub[f"log-{n:03d}"]["line"] == f"telrun.user{cid} {mid} tcc {rest}"
        assert "error" not in vector and "error" not in hub[f"log-{n:03d}"]


def test_log_vectors_keep_ids_of_the_real_log():
    """Spot checks made by hand against the raw log (mid first: ``mid cid code``)."""
    actor = {c["id"]: c for c in load("actor_replies.json")["cases"]}
    assert actor["log-001"]["expected"]["mid"] == 19 and actor["log-001"]["expected"]["cid"] == 11
    assert actor["log-037"]["expected"]["code"] == "F" and actor["log-037"]["expected"]["cid"] == 0
    assert actor["log-057"]["expected"] == {"cid": 11, "mid": 25, "code": ":", "keywords": []}
    assert actor["log-040"]["expected"]["keywords"] == [
        {"name": "ObjMag", "values": ["NaN"], "quoted": [False]}]


# --- commands ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("commands.json", "actor_commands"))
def test_actor_command_vector(case: dict[str, Any]) -> None:
    line = case["line"]
    if "error" in case:
        with pytest.raises(ProtocolError) as info:
            parse_actor_command(line)
        assert info.value.position == case["error"]["position"]
        return
    command = parse_actor_command(line)
    assert command == ActorCommand(**case["expected"])
    assert format_actor_command(command) == case["formatted"]
    assert parse_actor_command(case["formatted"]) == command


@pytest.mark.parametrize("case", cases("commands.json", "hub_commands"))
def test_hub_command_vector(case: dict[str, Any]) -> None:
    line, with_commander = case["line"], case["with_commander"]
    if "error" in case:
        with pytest.raises(ProtocolError) as info:
            parse_hub_command(line, with_commander=with_commander)
        assert info.value.position == case["error"]["position"]
        return
    command = parse_hub_command(line, with_commander=with_commander)
    assert command == HubCommand(**case["expected"])
    assert format_hub_command(command) == case["formatted"]
    assert parse_hub_command(case["formatted"], with_commander=with_commander) == command


# --- JSON <-> text -----------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("json_to_line.json"))
def test_json_to_line_vector(case: dict[str, Any]) -> None:
    text = format_keywords(json_to_keywords(case["json"]))
    assert text == case["text"]
    back = keywords_to_json(parse_keywords(text))
    assert same_json(back, case["back"])
    assert same_json(back, case["json"]) == case["round_trip"]
