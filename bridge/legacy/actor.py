"""Legacy (Tron/opscore) actors written as asyncio coroutines, clu style.

Function-based::

    actor = LegacyActor("shutter", port=19990, version="1.0.0")

    @actor.command()
    async def open(cmd, delay: float = 0.0):
        \"\"\"Open the shutter.\"\"\"
        cmd.info(shutter="moving")
        await asyncio.sleep(delay)
        cmd.finish(shutter="open")

Class-based::

    class Shutter(LegacyActor):
        @command
        async def open(self, cmd, delay: float = 0.0): ...

        @command(name="fail_me", timeout=5.0)
        async def fail_me(self, cmd): ...

The signature is the command's syntax (see :mod:`bridge.legacy.arguments`). Every
command gets ``>`` when it starts and exactly one terminal reply: a function that
returns without finishing is finished with ``:``; one that raises fails with
``f error="..."`` (the actor keeps serving); one that runs past its time limit fails
with ``f error="Command timed out after N s."``; commands still running when the
actor stops fail with ``f error="Actor <name> is stopping."``.

Built-in commands: ``ping``, ``version``, ``help [command]`` and ``status``
(overridable by defining a command of the same name). Command *methods* may not be
named like a method of :class:`LegacyActor` (``start``, ``stop``, ``handle``...):
write ``@command(name="stop") async def stop_command(self, cmd)`` instead.

Commanding other actors (ask and tell) goes through a *commander* object with
``send_command(actor, text, *, commander=None, callback=None, time_limit=None)
-> CommandHandle``: a :class:`~bridge.legacy.tron.TronConnection` when the actor is
given ``tron=(host, port)``, or any object passed as ``commander=``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from ..core import CommandHandle, ReplyCallback
from ..runtime import run_sync  # noqa: F401  (re-exported: actor programs use it)
from .arguments import ArgumentError, Signature, split_words
from .command import Command, Commander, iter_help_lines, reply_keywords, message_body
from .framing import DEFAULT_MAX_LINE_LENGTH
from .server import LOOPBACK, IncomingLegacyCommand, LegacyServer

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Attribute that marks a method as a command (set by :func:`command`).
_MARK = "__legacy_command__"


class NoCommanderError(RuntimeError):
    """The actor has no connection through which to command other actors."""


@dataclass(frozen=True)
class CommandSpec:
    """A command an actor knows: its name, function, argument syntax and time limit."""

    name: str
    function: Callable[..., Any]
    signature: Signature
    timeout: float | None = None
    doc: str = ""

    @property
    def usage(self) -> str:
        """``name ARGS...`` as shown by ``help``."""
        return f"{self.name} {self.signature.usage()}".rstrip()

    @property
    def summary(self) -> str:
        """The first line of the docstring."""
        return next(iter(iter_help_lines(self.doc)), "") if self.doc else ""


def _command_name(function: Callable[..., Any], name: str | None) -> str:
    if name is not None:
        return name
    base = function.__name__
    return base[:-1] if base.endswith("_") and len(base) > 1 else base  # open_ -> open


@overload
def command(function: F, /) -> F: ...
@overload
def command(*, name: str | None = None, timeout: float | None = None) -> Callable[[F], F]: ...


def command(function: Callable[..., Any] | None = None, /, *, name: str | None = None,
            timeout: float | None = None) -> Any:
    """Mark a method of a :class:`LegacyActor` subclass as a command (``@command`` or
    ``@command(name=..., timeout=...)``). The method takes ``(self, cmd, ...)``."""

    def mark(fn: F) -> F:
        setattr(fn, _MARK, (name, timeout))
        return fn

    return mark(function) if function is not None else mark


_builtin = command  # inside LegacyActor's body, ``command`` is the instance decorator


class LegacyActor:
    """A legacy actor: a TCP server on ``host:port`` running the commands defined on it.

    ``port=0`` picks a free port (see :attr:`port` after :meth:`start`). ``mid_first``
    writes ``mid cid code`` reply headers (TCC style). ``tron=(host, port)``: at start,
    connect to that hub as commander ``<name>.<name>`` and send ``hub startNubs <name>``
    (again after every reconnect), and send commands to other actors through it.
    ``commander``: another object to send commands through. ``command_timeout``:
    default time limit of every command (None: unlimited).
    """

    def __init__(
        self,
        name: str,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        version: str = "0.0.0",
        mid_first: bool = False,
        tron: tuple[str, int] | None = None,
        commander: Commander | None = None,
        command_timeout: float | None = None,
        start_nubs: bool = True,
        tron_timeout: float = 10.0,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        self.name = name
        self.version = version
        self.command_timeout = command_timeout
        self.tron_address = tron
        self.start_nubs = start_nubs
        self.tron_timeout = tron_timeout
        self.commander: Commander | None = commander
        self.tron: Any = None  # a TronConnection once started with tron=(host, port)
        self.server = LegacyServer(self, name=name, host=host, port=port, version=version,
                                   mid_first=mid_first, max_line_length=max_line_length)
        self.server.stop_reason = f"Actor {name} is stopping."
        self.commands: dict[str, CommandSpec] = {}
        self.running: dict[IncomingLegacyCommand, Command] = {}
        self._collect_class_commands()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attribute_name, attribute in vars(cls).items():
            if getattr(attribute, _MARK, None) is None:
                continue
            inherited = getattr(LegacyActor, attribute_name, None)
            if inherited is not None and getattr(inherited, _MARK, None) is None:
                raise TypeError(
                    f"{cls.__name__}.{attribute_name}: a command method may not replace "
                    f"LegacyActor.{attribute_name}; give the method another name and use "
                    f"@command(name={attribute_name!r})")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port}>"

    # -- properties --------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        """The listening port (the actual one after :meth:`start`, also with ``port=0``)."""
        return self.server.port

    @property
    def mid_first(self) -> bool:
        return self.server.mid_first

    @property
    def users(self) -> dict[int, str]:
        """Connected users: user id -> peer address."""
        return self.server.users

    @property
    def commander_name(self) -> str:
        """``<name>.<name>``: our commander name when commanding other actors."""
        return f"{self.name}.{self.name}"

    # -- defining commands ---------------------------------------------------------------------

    def command(self, function: Callable[..., Any] | None = None, /, *, name: str | None = None,
                timeout: float | None = None) -> Any:
        """Decorator registering ``function(cmd, ...)`` as a command of this actor.

        ``@actor.command``, ``@actor.command()`` or ``@actor.command(name=..., timeout=...)``.
        """

        def register(fn: F) -> F:
            self.add_command(fn, name=name, timeout=timeout)
            return fn

        return register(function) if function is not None else register

    def add_command(self, function: Callable[..., Any], *, name: str | None = None,
                    timeout: float | None = None) -> CommandSpec:
        """Register ``function(cmd, ...)`` (a bound method: ``(self, cmd, ...)``) as a command."""
        command_name = _command_name(function, name)
        if not command_name or any(c.isspace() for c in command_name):
            raise ValueError(f"invalid command name {command_name!r}")
        spec = CommandSpec(command_name, function, Signature.from_function(function), timeout,
                           inspect.getdoc(function) or "")
        self.commands[command_name] = spec
        return spec

    def _collect_class_commands(self) -> None:
        """Bind the ``@command`` methods of the class (subclasses override by name)."""
        for klass in reversed(type(self).__mro__):
            for attribute in vars(klass).values():
                mark = getattr(attribute, _MARK, None)
                if mark is None or not callable(attribute):
                    continue
                name, timeout = mark
                self.add_command(attribute.__get__(self, type(self)), name=name, timeout=timeout)

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> LegacyActor:
        """Listen for users; with ``tron=(host, port)`` also connect and register with the hub.

        Never hangs: an unreachable hub or a ``startNubs`` that does not finish within
        ``tron_timeout`` is logged as a warning (the connection keeps retrying and
        registers the actor once the hub is there).
        """
        await self.server.start()
        if self.tron_address is not None and self.tron is None:
            await self._start_tron()
        return self

    async def stop(self) -> None:
        """Fail the commands still running (``Actor <name> is stopping.``), close everything."""
        await self.server.stop(reason=f"Actor {self.name} is stopping.")
        if self.tron is not None:
            tron, self.tron = self.tron, None
            if self.commander is tron:
                self.commander = None
            await tron.stop()

    async def __aenter__(self) -> LegacyActor:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _start_tron(self) -> None:
        from .tron import TronConnection

        host, port = self.tron_address  # type: ignore[misc]
        tron = TronConnection(host, port, commander=self.commander_name)
        self.tron = tron
        if self.commander is None:
            self.commander = tron
        sent: asyncio.Future[CommandHandle] = asyncio.get_event_loop().create_future()

        def on_sent(handle: CommandHandle) -> None:
            if not sent.done():
                sent.set_result(handle)

        if self.start_nubs:
            tron.add_startup_command("hub", f"startNubs {self.name}", on_sent)
        try:
            await tron.start(wait=True, timeout=self.tron_timeout)
            if self.start_nubs:
                handle = await asyncio.wait_for(sent, self.tron_timeout)
                await asyncio.wait_for(_wait(handle), self.tron_timeout)
                if handle.failed:
                    log.warning("%s: hub startNubs %s failed: %s", self.name, self.name,
                                handle.keywords)
                else:
                    log.info("%s: registered with the hub at %s:%d", self.name, host, port)
        except (TimeoutError, asyncio.TimeoutError):
            log.warning("%s: no answer from the hub at %s:%d within %g s; still trying",
                        self.name, host, port, self.tron_timeout)

    # -- talking -------------------------------------------------------------------------------

    def broadcast(self, code: str, message: Any = None, /, **keywords: Any) -> None:
        """Write ``0 0 <code> <keywords>`` to every connected user (unsolicited output)."""
        self.server.broadcast(code, reply_keywords(message_body(code, message, keywords)))

    write = broadcast

    def send_command(self, target: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle:
        """Send ``text`` to actor ``target``; return its handle (``await`` it for the end).

        The commander name defaults to ``<name>.<name>``. Raise :class:`NoCommanderError`
        if the actor has nothing to send commands through.
        """
        if self.commander is None:
            raise NoCommanderError(
                f"Actor {self.name} cannot command {target!r}: it has no hub connection "
                "(create it with tron=(host, port) or commander=...).")
        return self.commander.send_command(target, text, commander=commander or
                                           self.commander_name, callback=callback,
                                           time_limit=time_limit)

    # -- running commands (the server's CommandHandler) ---------------------------------------

    def handle(self, incoming: IncomingLegacyCommand) -> Awaitable[None]:
        """Run one incoming command (called by the server, in arrival order)."""
        parts = incoming.text.split(None, 1)
        cmd = Command(self, incoming, parts[0] if parts else "",
                      parts[1].strip() if len(parts) > 1 else "")
        cmd.write(">")
        return self._run(cmd)

    async def _run(self, cmd: Command) -> None:
        self.running[cmd.incoming] = cmd
        try:
            await self._execute(cmd)
        except asyncio.CancelledError:
            if not cmd.done:
                cmd.fail(cmd.incoming._cancel_reason or "Command was cancelled.")
            raise
        except Exception as exc:
            log.exception("%s: command %r failed", self.name, cmd.text)
            if not cmd.done:
                cmd.fail(f"Command {cmd.text!r} failed: {type(exc).__name__}: {exc}")
        finally:
            self.running.pop(cmd.incoming, None)
        if not cmd.done:
            cmd.finish()

    async def _execute(self, cmd: Command) -> None:
        verb = cmd.verb
        if not verb:
            cmd.fail(f"Nothing to run in {cmd.text!r}.")
            return
        if verb == "--help":
            verb, cmd.arguments = "help", ""
        spec = self.commands.get(verb)
        if spec is None:
            cmd.fail(f"Unknown command {verb!r}. Send 'help' for the list of commands.")
            return
        try:
            argv = split_words(cmd.arguments)
        except ArgumentError as exc:
            cmd.fail(f"Bad arguments for {verb!r}: {exc}. Usage: {spec.usage}")
            return
        if "--help" in argv and verb != "help":
            self._write_help(cmd, [verb])
            cmd.finish()
            return
        try:
            parsed = spec.signature.parse(argv)
        except ArgumentError as exc:
            cmd.fail(f"Bad arguments for {verb!r}: {exc}. Usage: {spec.usage}")
            return
        timeout = spec.timeout if spec.timeout is not None else self.command_timeout
        result = spec.function(cmd, *parsed.args, **parsed.kwargs)
        if not inspect.isawaitable(result):
            return
        if timeout is None:
            await result
            return
        try:
            async with asyncio.timeout(timeout) as limit:
                await result
        except TimeoutError:
            if not limit.expired():
                raise
            if not cmd.done:
                cmd.fail(f"Command timed out after {timeout:g} s.")

    # -- built-in commands -----------------------------------------------------------------------

    @_builtin(name="ping")
    async def _cmd_ping(self, cmd: Command) -> None:
        """Check that the actor is alive."""
        cmd.finish(text="Pong.")

    @_builtin(name="version")
    async def _cmd_version(self, cmd: Command) -> None:
        """Report the actor's version."""
        cmd.finish(version=self.version)

    @_builtin(name="help")
    async def _cmd_help(self, cmd: Command, *names: str) -> None:
        """List the commands, or describe the named ones."""
        unknown = [n for n in names if n not in self.commands]
        if unknown:
            cmd.fail(f"Unknown command {unknown[0]!r}. Send 'help' for the list of commands.")
            return
        self._write_help(cmd, names)
        cmd.finish()

    def _write_help(self, cmd: Command, names: Iterable[str]) -> None:
        names = list(names)
        if not names:
            for name in sorted(self.commands):
                spec = self.commands[name]
                line = f"{spec.usage}: {spec.summary}" if spec.summary else spec.usage
                cmd.info(help=line)
            return
        for name in names:
            spec = self.commands[name]
            cmd.info(help=f"Usage: {spec.usage}")
            for line in iter_help_lines(spec.doc):
                cmd.info(help=line)

    @_builtin(name="status")
    async def _cmd_status(self, cmd: Command) -> None:
        """Report the actor's name, version, users and commands in flight."""
        cmd.info(actor=self.name, version=self.version, num_users=self.server.num_users,
                 users=list(self.server.users), commands_running=len(self.running))
        cmd.finish()


async def _wait(handle: CommandHandle) -> CommandHandle:
    return await handle


async def run(*actors: LegacyActor, stop_event: asyncio.Event | None = None,
              signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
              on_started: Callable[[], Any] | None = None) -> None:
    """Start ``actors``, run until SIGINT/SIGTERM or ``stop_event`` is set, then stop them.

    ``on_started()`` is called once all actors listen (e.g. to print a READY line).
    """
    loop = asyncio.get_running_loop()
    stop_event = stop_event or asyncio.Event()
    installed: list[int] = []
    for sig in signals:
        try:
            loop.add_signal_handler(sig, stop_event.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            log.debug("cannot install a handler for signal %s", sig)
    started: list[LegacyActor] = []
    try:
        for actor in actors:
            await actor.start()
            started.append(actor)
        if on_started is not None:
            on_started()
        await stop_event.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        for actor in reversed(started):
            await actor.stop()


