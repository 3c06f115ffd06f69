"""`KeywordDictionary`: an actor's keys, applied to parsed replies and to JSON bodies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import jsonmap
from ..model import Keyword
from .actorkeys_import import import_actorkeys
from .errors import ConversionError, DictionaryError
from .keys import KeyDef, NonFinite, TypedKeyword, ValueSpec
from .loader import DictionaryData, check_document, read_document
from .schema import CLU_DEFAULT_PROPERTIES, dictionary_schema
from .types import IntType, StringType

#: Typed versions of clu's default keywords, used when a dictionary does not define them.
CLU_DEFAULT_KEYS: dict[str, KeyDef] = {
    key.name.lower(): key
    for key in (
        KeyDef("text", (ValueSpec(StringType()),)),
        KeyDef("schema", (ValueSpec(StringType()),)),
        KeyDef("version", (ValueSpec(StringType()),)),
        KeyDef("yourUserID", (ValueSpec(IntType()),)),
        KeyDef("num_users", (ValueSpec(IntType()),)),
        KeyDef("UserInfo", (ValueSpec(IntType()), ValueSpec(StringType()))),
    )
}

#: clu default keywords whose JSON form is too loose to type (kept untyped, no warning).
_UNTYPED_DEFAULTS = {
    name.lower(): name for name in CLU_DEFAULT_PROPERTIES if name.lower() not in CLU_DEFAULT_KEYS
}

#: Called for each keyword that falls back to the untyped mapping: (keyword, reason).
FallbackHook = Callable[[Keyword, str], None]


class KeywordDictionary:
    """The keys of one actor; names are matched ignoring case.

    Build with :meth:`load` (a ``.json`` or ``.toml`` file) or :meth:`from_dict`.
    With ``clu_defaults`` (the default), clu's default keywords that the dictionary
    does not define are known too (``text``, ``version``... typed; ``help``,
    ``error``... untyped).
    """

    def __init__(
        self,
        actor: str,
        version: tuple[int, int],
        keys: Iterable[KeyDef],
        help: str | None = None,
        clu_defaults: bool = True,
        source: str | None = None,
    ) -> None:
        self.actor = actor
        self.version = version
        self.help = help
        self.source = source
        self.clu_defaults = clu_defaults
        self._keys: dict[str, KeyDef] = {key.name.lower(): key for key in keys}
        self._lookup: dict[str, KeyDef] = dict(CLU_DEFAULT_KEYS) if clu_defaults else {}
        self._lookup.update(self._keys)

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, obj: Mapping[str, Any], *, source: str = "<dict>", clu_defaults: bool = True
    ) -> "KeywordDictionary":
        """A dictionary from its parsed JSON/TOML form; raise DictionaryError if malformed."""
        return cls._from_data(check_document(obj, source), source, clu_defaults)

    @classmethod
    def load(cls, path: str | Path, *, clu_defaults: bool = True) -> "KeywordDictionary":
        """Read a ``.json`` or ``.toml`` dictionary file, or an actorkeys ``.py`` file (read
        by :func:`~.actorkeys_import.import_actorkeys`, never executed); raise
        DictionaryError if malformed."""
        if Path(path).suffix.lower() == ".py":
            source = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DictionaryError(f"cannot read: {exc}", "", source) from None
            return cls.from_dict(import_actorkeys(text, source=source), source=source,
                                 clu_defaults=clu_defaults)
        obj, source = read_document(path)
        return cls._from_data(check_document(obj, source), source, clu_defaults)

    @classmethod
    def _from_data(cls, data: DictionaryData, source: str, clu_defaults: bool) -> "KeywordDictionary":
        return cls(data.actor, data.version, data.keys, data.help, clu_defaults, source)

    def to_dict(self) -> dict[str, Any]:
        """This dictionary in our data format (``from_dict(d.to_dict())`` is equal to ``d``)."""
        result: dict[str, Any] = {"actor": self.actor, "version": list(self.version)}
        if self.help is not None:
            result["help"] = self.help
        result["keys"] = {key.name: key.to_spec() for key in self._keys.values()}
        return result

    # -- lookup -------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._keys

    def __getitem__(self, name: str) -> KeyDef:
        return self._keys[name.lower()]

    def get(self, name: str) -> KeyDef | None:
        """The key for ``name`` (ignoring case), clu defaults included; None if unknown."""
        return self._lookup.get(name.lower())

    def __iter__(self) -> Iterator[KeyDef]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeywordDictionary):
            return NotImplemented
        return self.to_dict() == other.to_dict() and self.clu_defaults == other.clu_defaults

    def __repr__(self) -> str:
        return f"<KeywordDictionary {self.actor} {self.version[0]}.{self.version[1]}: {len(self)} keys>"

    # -- text -> natives ------------------------------------------------------------
    def convert(self, keyword: Keyword) -> TypedKeyword | None:
        """Apply the key named like ``keyword``: None if unknown, ``ok=False`` if it does not validate."""
        key = self._lookup.get(keyword[0].lower())
        if key is None:
            return None
        try:
            natives = key.convert_values(keyword[1])
        except ConversionError as exc:
            return TypedKeyword(keyword, key, False, (), str(exc))
        return TypedKeyword(keyword, key, True, natives)

    def keyword_to_json(
        self,
        keyword: Keyword,
        *,
        nonfinite: NonFinite = "float",
        dictionary_names: bool = True,
        on_fallback: FallbackHook | None = None,
    ) -> tuple[str, Any]:
        """``(name, JSON value)`` of one keyword: typed if it validates, else untyped."""
        typed = self.convert(keyword)
        if typed is not None and typed.ok:
            return (typed.name if dictionary_names else keyword.name), typed.to_json(nonfinite)
        name = keyword.name
        if typed is not None:
            if dictionary_names:
                name = typed.name
            reason = f"{self.actor}.{typed.name}: {typed.error}"
        elif self.clu_defaults and name.lower() in _UNTYPED_DEFAULTS:
            reason = ""
        else:
            reason = f"{self.actor}.{name}: not in the dictionary"
        if reason and on_fallback is not None:
            on_fallback(keyword, reason)
        return name, jsonmap.keyword_to_json(keyword)

    def reply_to_json(
        self,
        keywords: Iterable[Keyword],
        *,
        nonfinite: NonFinite = "float",
        dictionary_names: bool = True,
        on_fallback: FallbackHook | None = None,
    ) -> dict[str, Any]:
        """A reply's keywords as a JSON object, typed where they validate.

        Keywords that are unknown or do not validate get the untyped mapping and are
        reported to ``on_fallback(keyword, reason)``. Known keywords are named as in
        the dictionary unless ``dictionary_names`` is False. A later duplicate wins.
        """
        body: dict[str, Any] = {}
        for keyword in keywords:
            name, value = self.keyword_to_json(
                keyword, nonfinite=nonfinite, dictionary_names=dictionary_names,
                on_fallback=on_fallback,
            )
            body[name] = value
        return body

    # -- JSON -> text -----------------------------------------------------------------
    def json_to_keyword(self, name: str, value: Any) -> Keyword:
        """A JSON value as a keyword: typed text if the key accepts it, else the untyped mapping."""
        key = self._lookup.get(name.lower())
        if key is not None:
            try:
                texts, quoted = key.json_to_values(value)
            except ConversionError:
                pass
            else:
                return Keyword(name, texts, quoted)
        return jsonmap.json_to_keyword(name, value)

    def json_to_keywords(self, body: Mapping[str, Any]) -> tuple[Keyword, ...]:
        """A JSON reply body as keywords, in the body's order."""
        return tuple(self.json_to_keyword(name, value) for name, value in body.items())

    # -- schema -----------------------------------------------------------------------
    def json_schema(
        self, *, additional_properties: bool = True, nonfinite: NonFinite = "float"
    ) -> dict[str, Any]:
        """Draft-07 schema of this actor's typed replies, with clu's default keywords."""
        return dictionary_schema(
            self.actor, list(self._keys.values()), self.help, additional_properties, nonfinite
        )
