"""The hub's ``perms`` actor: which program may command which actor (tron's ``Auth``).

Sans-IO. :class:`Permissions` holds tron's tables — the actors subject to permissions,
each program's authorised actors, the locked actors — and answers
:meth:`~Permissions.check_access` for every command from a logged-in commander. Its
methods report through :class:`Answer` objects (anything with ``inform``/``warn``/
``fail`` taking keywords: a :class:`~bridge.hub.command.HubCommand`, or the hub's
``.perms 0 perms`` line writer), in tron's keywords and words:

* ``actors="a1","a2"`` (bare ``actors`` if none; ``perms`` itself is not listed),
* ``programs="APO","GUEST",...``, ``lockedActors=...``,
* ``authList="PROGRAM","a1","a2"`` (one per program, sorted),
* ``permsTxt="..."`` for every refusal and complaint.

:class:`PermsVerbs` runs ``perms status|lock|unlock|setLocked|register|unregister|set|
add|drop`` on a :class:`Permissions`. Where this deliberately differs from tron:
``protocol_specs/hub.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ..protocol import Keyword
from .lines import strings, text

#: Programs that may command every actor, also locked ones (tron's ``Auth.gods``).
GODS = ("APO", "OBSERVER", "LCO")
#: The perms actor's own safe commands (tron's ``Vocab/perms.py``).
PERMS_SAFE_COMMANDS = r"^\s*status\s*$"


class Answer(Protocol):
    """Where :class:`Permissions` reports: one command, or the hub's ``.perms`` writer."""

    def inform(self, *keywords: Keyword) -> Any: ...

    def warn(self, *keywords: Keyword) -> Any: ...

    def fail(self, *keywords: Keyword) -> Any: ...


def _perms_txt(message: str) -> Keyword:
    return text("permsTxt", message)


def program_actors(entry: Any) -> list[str]:
    """The actors of one ``programs.json`` entry (``{"actors": [...]}``) or a plain list."""
    actors = entry.get("actors", []) if isinstance(entry, Mapping) else entry
    if isinstance(actors, str) or not isinstance(actors, Iterable):
        raise ValueError(f"expected a list of actor names, got {actors!r}")
    return [str(a) for a in actors]


class Permissions:
    """tron's authorisation tables and its ``checkAccess`` rule.

    ``default``: where complaints that are not about one command go (tron's
    ``.perms 0 perms`` command). ``programs``: the initial table in ``programs.json``
    form (``{"PROG": {"actors": [...]}}``); program names are upper-cased as tron does.
    ``gods`` get ``perms`` and every actor registered later, and may command locked
    actors.
    """

    def __init__(self, default: Answer, programs: Mapping[str, Any] | None = None,
                 gods: Iterable[str] = GODS) -> None:
        self.default = default
        self.gods = tuple(g.upper() for g in gods)
        self.actors: dict[str, None] = {"perms": None}   # subject to permissions
        self.programs: dict[str, dict[str, None]] = {}   # program -> authorised actors
        self.locked: dict[str, None] = {}
        self.add_programs(self.gods, ["perms"])
        for name, entry in (programs or {}).items():
            self.add_programs([name], program_actors(entry))

    # -- the rule --------------------------------------------------------------------------
    def check_access(self, program: str, actor: str, command: str, answer: Answer,
                     safe: re.Pattern[str] | None = None, needs_auth: bool = True) -> bool:
        """Whether ``program`` may send ``command`` to ``actor`` (tron's ``checkAccess``).

        In this order: an actor that needs no auth is free; a locked actor only takes
        gods' commands (``text="X is locked by APO"`` to ``answer``); an actor never
        registered is free; a command matching the actor's ``safe`` pattern is free; an
        unknown program is refused with ``permsTxt`` to ``answer`` and to the default
        writer; otherwise the program's list decides.
        """
        program = program.upper()
        if not needs_auth:
            return True
        if actor in self.locked:
            if program in self.gods:
                return True
            answer.warn(text("text", f"{actor} is locked by APO"))
            return False
        if actor not in self.actors:
            return True
        if safe is not None and command and safe.search(command):
            return True
        allowed = self.programs.get(program)
        if allowed is None:
            message = _perms_txt(f"Authorization table has no entry for program: {program}")
            answer.warn(message)
            if answer is not self.default:
                self.default.warn(message)
            return False
        return actor in allowed

    # -- keywords --------------------------------------------------------------------------
    def status(self, answer: Answer | None = None) -> None:
        """``actors``, ``programs``, ``lockedActors`` and every ``authList``."""
        answer = answer or self.default
        self.report_actors(answer)
        self.report_programs(answer)
        self.report_locked(answer)
        self.report_auth(answer)

    def status_keywords(self) -> list[Keyword]:
        """The keywords of :meth:`status`, in order (to fill a keyword cache)."""
        collected = _Collector()
        self.status(collected)
        return collected.keywords

    def report_actors(self, answer: Answer) -> None:
        answer.inform(strings("actors", sorted(a for a in self.actors if a != "perms")))

    def report_programs(self, answer: Answer) -> None:
        answer.inform(strings("programs", sorted(self.programs)))

    def report_locked(self, answer: Answer) -> None:
        answer.inform(strings("lockedActors", sorted(self.locked)))

    def report_auth(self, answer: Answer, programs: Iterable[str] | None = None) -> None:
        for program in sorted(self.programs if programs is None else programs):
            answer.inform(strings("authList", [program, *sorted(self.programs[program])]))

    # -- changes ---------------------------------------------------------------------------
    def add_actors(self, actors: Iterable[str], answer: Answer | None = None) -> None:
        """Make actors subject to permissions (when they connect); gods may command them."""
        answer = answer or self.default
        actors = list(actors)
        for actor in actors:
            if actor in self.actors:
                answer.warn(_perms_txt(f"Actor {actor} is already registered for access "
                                       "control."))
            else:
                self.actors[actor] = None
        for god in self.gods:
            self.add_actors_to_program(god, actors, answer)
        self.report_actors(answer)

    def lock(self, actors: list[str], answer: Answer) -> None:
        """Lock ``actors`` (all registered actors if empty) against all but gods."""
        for actor in actors or list(self.actors):
            if actor in self.locked:
                answer.warn(_perms_txt(f"Actor {actor} is already locked"))
            elif actor not in self.actors:
                answer.warn(_perms_txt(f"Actor {actor} is not subject to permissions and "
                                       "will not be locked"))
            else:
                self.locked[actor] = None
        self.report_locked(answer)

    def set_locked(self, actors: list[str] | None, answer: Answer) -> None:
        """Lock exactly ``actors`` (every registered actor if None; none if empty)."""
        self.locked = {}
        for actor in list(self.actors) if actors is None else actors:
            if actor not in self.actors:
                answer.warn(_perms_txt(f"Actor {actor} is not subject to permissions and "
                                       "will not be locked"))
            else:
                self.locked[actor] = None
        self.report_locked(answer)

    def unlock(self, actors: list[str], answer: Answer) -> None:
        """Unlock ``actors`` (every locked actor if empty)."""
        for actor in actors or list(self.locked):
            if actor in self.locked:
                del self.locked[actor]
            else:
                answer.warn(_perms_txt(f"Actor {actor} was not locked"))
        self.report_locked(answer)

    def add_programs(self, programs: Iterable[str], actors: Iterable[str] = (),
                     answer: Answer | None = None) -> None:
        """Register programs (upper-cased) with ``actors``; existing ones are kept."""
        answer = answer or self.default
        actors = list(actors)
        for program in programs:
            program = program.upper()
            if program in self.programs:
                answer.warn(_perms_txt(f"Program {program} already has an authorization "
                                       "entry, which will not be modified."))
                continue
            self.programs[program] = {}
            self.set_program(program, actors, answer)
        self.report_programs(answer)

    def drop_programs(self, programs: Iterable[str], answer: Answer) -> None:
        """Unregister programs (every program if empty); gods stay."""
        for program in list(programs) or list(self.programs):
            if program in self.gods:
                answer.warn(_perms_txt(f"Super-{program} cannot be removed from the list of "
                                       "authorized programs"))
                self.report_auth(answer, [program])
                continue
            if program in self.programs:
                del self.programs[program]
            else:
                answer.warn(_perms_txt(f"Program {program} did not have an authorization "
                                       "entry, so could not be deleted"))
        self.report_programs(answer)

    def set_program(self, program: str, actors: Iterable[str], answer: Answer) -> bool:
        """Replace the actors ``program`` may command; False (and ``fail``) if unknown."""
        if program not in self.programs:
            answer.fail(_perms_txt(f"Program {program} did not have an authorization entry, "
                                   "so could not be set"))
            return False
        allowed: dict[str, None] = {}
        for actor in actors:
            allowed[actor] = None
            if actor not in self.actors:
                # (sic) tron's spelling, kept: clients may match on it.
                answer.warn(_perms_txt(f"Actor {actor} is not currentlu in the list of "
                                       "actors."))
        if program in self.gods:
            allowed["perms"] = None
        self.programs[program] = allowed
        self.report_auth(answer, [program])
        return True

    def add_actors_to_program(self, program: str, actors: Iterable[str],
                              answer: Answer) -> bool:
        """Let ``program`` also command registered ``actors``; False (``fail``) if unknown."""
        allowed = self.programs.get(program)
        if allowed is None:
            answer.fail(_perms_txt(f"Program {program} did not have an authorization entry, "
                                   "so could not be added to"))
            return False
        for actor in actors:
            if actor not in self.actors:
                answer.warn(_perms_txt(f"Actor {actor} is not subject to permissions."))
            else:
                allowed[actor] = None
        self.report_auth(answer, [program])
        return True

    def drop_actors_from_program(self, program: str, actors: Iterable[str],
                                 answer: Answer) -> bool:
        """No longer let ``program`` command ``actors``; False (``fail``) if unknown."""
        allowed = self.programs.get(program)
        if allowed is None:
            answer.fail(_perms_txt(f"Program {program} did not have an authorization entry, "
                                   "so could not be modified"))
            return False
        for actor in actors:
            if actor in allowed:
                del allowed[actor]
            else:
                answer.warn(_perms_txt(f"Actor {actor} was not in program {program}'s "
                                       "athorized list"))
        self.report_auth(answer, [program])
        return True


class _Collector:
    """An :class:`Answer` that only keeps the keywords (for the cache)."""

    def __init__(self) -> None:
        self.keywords: list[Keyword] = []

    def inform(self, *keywords: Keyword) -> None:
        self.keywords.extend(keywords)

    warn = fail = inform


def _words(command: str) -> list[str]:
    """The argument names of a command, as tron's argument parser keys them: each
    word, ``name=value`` counted by its name, each name once, in order."""
    names: dict[str, None] = {}
    for word in command.split():
        names.setdefault(word.split("=", 1)[0], None)
    return list(names)


def _program_arg(command: str) -> str | None:
    for word in command.split():
        name, eq, value = word.partition("=")
        if name == "program" and eq:
            return value.strip("\"'")
    return None


class Command(Answer, Protocol):
    """What a perms verb needs of its command: its text, reply methods and ``finish``."""

    text: str

    def finish(self, *keywords: Keyword) -> Any: ...


class PermsVerbs:
    """Runs ``perms <verb> ...`` on a :class:`Permissions` (tron's ``Vocab/perms.py``).

    ``programs_connected()`` gives the programs of the logged-in commanders
    (``perms register *`` registers those not known yet).
    """

    def __init__(self, permissions: Permissions,
                 programs_connected: Callable[[], Iterable[str]] = tuple) -> None:
        self.permissions = permissions
        self.programs_connected = programs_connected
        self.verbs: dict[str, Callable[[Command, list[str]], None]] = {
            "status": self.status, "lock": self.lock, "unlock": self.unlock,
            "setLocked": self.set_locked, "register": self.register,
            "unregister": self.unregister, "set": self.set, "add": self.add,
            "drop": self.drop,
        }

    def run(self, cmd: Command, queued: Callable[[], Any] = lambda: None) -> None:
        """Answer one ``perms`` command and end it (``:`` or ``f``)."""
        words = _words(cmd.text)
        if not words:
            cmd.finish()
            return
        handler = self.verbs.get(words[0])
        if handler is None:
            cmd.fail(_perms_txt(f"No command named {words[0]}"))
            return
        queued()
        handler(cmd, words[1:])

    def status(self, cmd: Command, _args: list[str]) -> None:
        self.permissions.status(cmd)
        cmd.finish()

    def lock(self, cmd: Command, args: list[str]) -> None:
        self.permissions.lock([] if args == ["*"] else args, cmd)
        cmd.finish()

    def unlock(self, cmd: Command, args: list[str]) -> None:
        self.permissions.unlock([] if args == ["*"] else args, cmd)
        cmd.finish()

    def set_locked(self, cmd: Command, args: list[str]) -> None:
        self.permissions.set_locked(None if args == ["*"] else args, cmd)
        cmd.finish()

    def register(self, cmd: Command, args: list[str]) -> None:
        if not args:
            cmd.fail(text("text", "perms register requires one or more program names"))
            return
        if args == ["*"]:
            known = self.permissions.programs
            args = [p for p in dict.fromkeys(p.upper() for p in self.programs_connected())
                    if p not in known]
        self.permissions.add_programs(args, (), cmd)
        cmd.finish()

    def unregister(self, cmd: Command, args: list[str]) -> None:
        if not args:
            cmd.fail(text("text", "perms unregister requires one or more program names"))
            return
        self.permissions.drop_programs([] if args == ["*"] else args, cmd)
        cmd.finish()

    def set(self, cmd: Command, args: list[str]) -> None:
        self._program_change(cmd, args, self.permissions.set_program)

    def add(self, cmd: Command, args: list[str]) -> None:
        self._program_change(cmd, args, self.permissions.add_actors_to_program)

    def drop(self, cmd: Command, args: list[str]) -> None:
        self._program_change(cmd, args, self.permissions.drop_actors_from_program)

    def _program_change(self, cmd: Command, args: list[str],
                        change: Callable[[str, list[str], Answer], bool]) -> None:
        program = _program_arg(cmd.text)
        if program is None:
            cmd.fail(text("authTxt", "no program specified"))
            return
        if change(program, [a for a in args if a != "program"], cmd):
            cmd.finish()
