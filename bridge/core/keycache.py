"""The last known value of every keyword of every actor, whatever transport reported it.

Keyword names are matched case-insensitively (as tron and opscore do) but kept in
the spelling last seen on the wire. Values are JSON values: typed when the reporter
knew the actor's keyword dictionary, else the untyped mapping of
:func:`bridge.protocol.keywords_to_json`. Subscribers hear about changes once per
update, with all the keywords that changed in it.

Each entry can also keep the keyword as it was written on the wire (``raw``), so a
hub answers ``keys getFor=<actor>`` with the actor's own text (``SecFocus=40.00``,
``MoveItems="NNNNNNYNN"``), as tron does, rather than with the text of the JSON value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol import Keyword, keywords_to_json
from .commands import is_awaitable_result

log = logging.getLogger(__name__)

#: ``callback(actor, changed)``: ``changed`` maps keyword name -> new JSON value.
KeywordCallback = Callable[[str, dict[str, Any]], "Awaitable[None] | None"]


@dataclass(slots=True)
class CachedKeyword:
    """One cached keyword: its spelling, its JSON value, when it was last reported and,
    if the reporter gave it, the keyword as written on the wire (``raw``)."""

    name: str
    value: Any
    updated: float
    raw: Keyword | None = None


@dataclass(slots=True)
class _Subscription:
    callback: KeywordCallback
    actor: str | None
    only_changes: bool


class KeywordCache:
    """Keyword values per actor, with change callbacks (per actor or for all actors)."""

    def __init__(self) -> None:
        self._actors: dict[str, dict[str, CachedKeyword]] = {}
        self._subscriptions: list[_Subscription] = []

    # -- reading ---------------------------------------------------------------------
    def actors(self) -> list[str]:
        """Actors with at least one cached keyword."""
        return [actor for actor, entries in self._actors.items() if entries]

    def get(self, actor: str, names: Iterable[str] | None = None) -> dict[str, Any]:
        """``{name: value}`` of ``actor`` (all keywords, or only ``names``; unknown names are left out)."""
        entries = self._actors.get(actor, {})
        if names is None:
            return {e.name: e.value for e in entries.values()}
        if isinstance(names, str):
            names = (names,)
        found: dict[str, Any] = {}
        for name in names:
            entry = entries.get(name.lower())
            if entry is not None:
                found[entry.name] = entry.value
        return found

    def entries(self, actor: str) -> list[CachedKeyword]:
        """The cached records of every keyword of ``actor``, in first-reported order."""
        return list(self._actors.get(actor, {}).values())

    def value(self, actor: str, name: str, default: Any = None) -> Any:
        """The value of one keyword, or ``default``."""
        entry = self._actors.get(actor, {}).get(name.lower())
        return default if entry is None else entry.value

    def entry(self, actor: str, name: str) -> CachedKeyword | None:
        """The cached record of one keyword (name, value, time of the last report)."""
        return self._actors.get(actor, {}).get(name.lower())

    def __contains__(self, item: object) -> bool:
        """``actor in cache`` or ``(actor, name) in cache``."""
        if isinstance(item, tuple) and len(item) == 2:
            actor, name = item
            return name.lower() in self._actors.get(actor, {})
        return bool(self._actors.get(item))  # type: ignore[arg-type]

    # -- writing ---------------------------------------------------------------------
    def update(self, actor: str, keywords: Mapping[str, Any] | Iterable[Keyword],
               raw: Iterable[Keyword] | None = None) -> list[str]:
        """Store the keywords of one reply of ``actor``; return the names whose value changed.

        ``keywords`` is a JSON object (``{name: value}``) or line-protocol keywords
        (converted with the untyped mapping). ``raw``: the reply's keywords as written
        on the wire, kept beside their values (an actor's replies; not given, an entry
        has none). A keyword seen for the first time counts as changed; one reported
        again with the same value does not.
        """
        values = keywords if type(keywords) is dict or isinstance(keywords, Mapping) \
            else keywords_to_json(keywords)
        if not values:
            return []
        wires = raw if raw is None or type(raw) is tuple else tuple(raw)
        entries = self._actors.setdefault(actor, {})
        now = time.time()
        changed: dict[str, Any] = {}
        for position, (name, value) in enumerate(values.items()):
            key = name.lower()
            entry = entries.get(key)
            wire = None
            if wires is not None:
                # The JSON object follows the reply's keywords in order (a dictionary
                # may rename or merge some): look further only if this one is not it.
                if position < len(wires) and wires[position].name == name:
                    wire = wires[position]
                else:
                    wire = next((k for k in wires if k.name.lower() == key), None)
            if entry is None:
                entries[key] = CachedKeyword(name, value, now, wire)
                changed[name] = value
                continue
            if entry.value != value or type(entry.value) is not type(value):
                changed[name] = value
            entry.name, entry.value, entry.updated, entry.raw = name, value, now, wire
        if self._subscriptions:
            self._notify(actor, changed, dict(values))
        return list(changed)

    def clear(self, actor: str | None = None) -> None:
        """Forget the keywords of ``actor`` (of every actor if None). No callbacks are called."""
        if actor is None:
            self._actors.clear()
        else:
            self._actors.pop(actor, None)

    # -- callbacks -------------------------------------------------------------------
    def subscribe(self, callback: KeywordCallback, actor: str | None = None, *,
                  only_changes: bool = True) -> KeywordCallback:
        """Call ``callback(actor, {name: value})`` after updates of ``actor`` (any actor if None).

        With ``only_changes`` (default) it gets the keywords whose value changed and
        is not called when none did; otherwise it gets every keyword of every update.
        Async callbacks are scheduled as tasks. Returns ``callback`` (for :meth:`unsubscribe`).
        """
        self._subscriptions.append(_Subscription(callback, actor, only_changes))
        return callback

    def unsubscribe(self, callback: KeywordCallback, actor: str | None = None) -> None:
        """Remove the subscriptions of ``callback`` for ``actor`` (None: the global one)."""
        self._subscriptions = [s for s in self._subscriptions
                               if not (s.callback == callback and s.actor == actor)]

    def _notify(self, actor: str, changed: dict[str, Any], updated: dict[str, Any]) -> None:
        for sub in list(self._subscriptions):
            if sub.actor is not None and sub.actor != actor:
                continue
            payload = changed if sub.only_changes else updated
            if not payload:
                continue
            try:
                result = sub.callback(actor, dict(payload))
                if is_awaitable_result(result):
                    asyncio.ensure_future(result)
            except Exception:  # a subscriber must not break the cache or its reporter
                log.exception("keyword callback %r failed for %s", sub.callback, actor)
