"""KeywordCache: per-actor keyword values, case-insensitive names, change callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.core import KeywordCache
from bridge.protocol import Keyword, parse_keywords
from tests.support.aio import aio_test


def test_update_with_json_returns_new_and_changed_names() -> None:
    cache = KeywordCache()
    assert cache.update("tcc", {"AirTemp": 4.4, "Focus": 10}) == ["AirTemp", "Focus"]
    assert cache.update("tcc", {"AirTemp": 4.4, "Focus": 11}) == ["Focus"]
    assert cache.update("tcc", {"AirTemp": 4.4}) == []
    assert cache.get("tcc") == {"AirTemp": 4.4, "Focus": 11}


def test_update_with_line_keywords_uses_untyped_mapping() -> None:
    cache = KeywordCache()
    changed = cache.update("shutter", parse_keywords('shutter=open; moves=3; limits=T,F; text="a b"'))
    assert changed == ["shutter", "moves", "limits", "text"]
    assert cache.get("shutter") == {"shutter": "open", "moves": 3, "limits": [True, False],
                                    "text": "a b"}


def test_names_are_case_insensitive_and_keep_last_spelling() -> None:
    cache = KeywordCache()
    cache.update("hub", {"Actors": ["hub", "tcc"]})
    assert cache.value("hub", "actors") == ["hub", "tcc"]
    assert cache.get("hub", ["ACTORS", "nosuch"]) == {"Actors": ["hub", "tcc"]}
    assert ("hub", "aCtOrS") in cache
    assert cache.update("hub", {"actors": ["hub", "tcc"]}) == []  # same value, new spelling
    assert cache.get("hub") == {"actors": ["hub", "tcc"]}


def test_actors_are_separate_and_clear_forgets_one_or_all() -> None:
    cache = KeywordCache()
    cache.update("a", {"x": 1})
    cache.update("b", {"x": 2})
    assert cache.get("a") == {"x": 1} and cache.get("b") == {"x": 2}
    assert sorted(cache.actors()) == ["a", "b"]
    cache.clear("a")
    assert cache.get("a") == {} and "a" not in cache and "b" in cache
    assert cache.value("a", "x", "gone") == "gone"
    cache.clear()
    assert cache.actors() == []


def test_type_change_counts_as_change() -> None:
    cache = KeywordCache()
    cache.update("a", {"flag": 1})
    assert cache.update("a", {"flag": True}) == ["flag"]
    assert cache.update("a", {"flag": 1.0}) == ["flag"]


def test_entry_records_update_time() -> None:
    cache = KeywordCache()
    cache.update("a", [Keyword("k", ("1",))])
    entry = cache.entry("a", "K")
    assert entry is not None and entry.name == "k" and entry.value == 1 and entry.updated > 0
    assert cache.entry("a", "other") is None


def test_callbacks_per_actor_and_global() -> None:
    cache = KeywordCache()
    seen_all: list[tuple[str, dict[str, Any]]] = []
    seen_tcc: list[tuple[str, dict[str, Any]]] = []
    every: list[tuple[str, dict[str, Any]]] = []
    cache.subscribe(lambda actor, changed: seen_all.append((actor, changed)))
    cache.subscribe(lambda actor, changed: seen_tcc.append((actor, changed)), "tcc")
    cache.subscribe(lambda actor, kws: every.append((actor, kws)), "tcc", only_changes=False)

    cache.update("tcc", {"a": 1, "b": 2})
    cache.update("tcc", {"a": 1, "b": 3})
    cache.update("tcc", {"a": 1})
    cache.update("boss", {"exposing": False})

    assert seen_all == [("tcc", {"a": 1, "b": 2}), ("tcc", {"b": 3}), ("boss", {"exposing": False})]
    assert seen_tcc == [("tcc", {"a": 1, "b": 2}), ("tcc", {"b": 3})]
    assert every == [("tcc", {"a": 1, "b": 2}), ("tcc", {"a": 1, "b": 3}), ("tcc", {"a": 1})]


def test_failing_callback_does_not_break_update_or_other_callbacks() -> None:
    cache = KeywordCache()
    seen: list[str] = []

    def broken(actor: str, changed: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    cache.subscribe(broken)
    cache.subscribe(lambda actor, changed: seen.append(actor))
    assert cache.update("a", {"x": 1}) == ["x"]
    assert seen == ["a"] and cache.value("a", "x") == 1


def test_unsubscribe() -> None:
    cache = KeywordCache()
    seen: list[str] = []

    def cb(actor: str, changed: dict[str, Any]) -> None:
        seen.append(actor)

    cache.subscribe(cb, "a")
    cache.update("a", {"x": 1})
    cache.unsubscribe(cb, "a")
    cache.update("a", {"x": 2})
    assert seen == ["a"]


@aio_test
async def test_async_callbacks_are_scheduled() -> None:
    cache = KeywordCache()
    got: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def cb(actor: str, changed: dict[str, Any]) -> None:
        got.set_result(changed)

    cache.subscribe(cb, "a")
    cache.update("a", {"x": [1, 2]})
    assert await asyncio.wait_for(got, 5) == {"x": [1, 2]}


def test_raw_keywords_are_kept_beside_their_values():
    """A hub answers keys getFor=<actor> with what the actor wrote (tron does)."""
    from bridge.protocol import parse_keywords

    cache = KeywordCache()
    written = parse_keywords('SecFocus=40.00; MoveItems="NNNNNNYNN"; Moved')
    cache.update("tcc", {"SecFocus": 40.0, "MoveItems": "NNNNNNYNN", "Moved": []}, written)
    entry = cache.entry("tcc", "secfocus")
    assert entry.value == 40.0 and entry.raw is written[0]
    assert [e.raw for e in cache.entries("tcc")] == list(written)
    cache.update("tcc", {"SecFocus": 41.0})  # reported again without the wire form
    assert cache.entry("tcc", "SecFocus").raw is None
    assert [e.name for e in cache.entries("tcc")] == ["SecFocus", "MoveItems", "Moved"]
