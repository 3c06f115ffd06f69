"""LegacyActor on real loopback sockets: built-ins, the command model, errors, life cycle."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import pytest_twisted
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bridge.legacy.actor import LegacyActor, command, run
from bridge.legacy.command import Command
from bridge.runtime import as_deferred
from tests.legacy.line_client import TERMINAL, LineClient, code_of, mid_of
from tests.support.aio import aio_test


class Mode(enum.Enum):
    FAST = "fast"


class Shutter(LegacyActor):
    """A class-based actor with one command per behaviour under test."""

    def __init__(self, **kwargs) -> None:
        super().__init__("shutter", version="1.0.0", **kwargs)
        self.position = "closed"
        self.release = asyncio.Event()
        self.started = 0

    @command
    async def open(self, cmd: Command, delay: float = 0.0) -> None:
        """Open the shutter.

        Takes DELAY seconds.
        """
        cmd.info(shutter="moving")
        await asyncio.sleep(delay)
        self.position = "open"
        cmd.finish(shutter="open")

    @command(name="fail_me", timeout=5.0)
    async def fail_me(self, cmd: Command) -> None:
        cmd.fail("fail_me always fails")

    @command
    async def slow(self, cmd: Command, seconds: float, label: str = "x") -> None:
        cmd.info(label=label)
        await asyncio.sleep(seconds)
        cmd.finish(label=label)

    @command
    async def hold(self, cmd: Command) -> None:
        self.started += 1
        cmd.info(text="holding")
        await self.release.wait()
        cmd.finish()

    @command(timeout=0.2)
    async def hang(self, cmd: Command) -> None:
        await asyncio.Event().wait()

    @command
    async def boom(self, cmd: Command) -> None:
        cmd.info(text="about to fail")
        raise ValueError("kaputt")

    @command
    async def quiet(self, cmd: Command) -> None:
        """Returns without finishing."""

    @command
    async def late(self, cmd: Command) -> None:
        cmd.finish(first=1)
        cmd.info(second=2)
        cmd.fail("third")

    @command(name="add")
    def add_(self, cmd: Command, a: int, b: int = 0) -> None:
        """A plain (not async) command function."""
        cmd.finish(sum=a + b)

    @command
    async def values(self, cmd: Command) -> None:
        cmd.info(flag=True, off=False, nothing=None, items=[1, "a b", 2.5], ambiguous="T",
                 number_text="42", mode=Mode.FAST, empty=[])
        cmd.warning("careful")
        cmd.error("bad but going on")
        cmd.debug({"dbg": "x"}, more=1)
        cmd.finish("all done")

    @command
    async def echo(self, cmd: Command, *words: str) -> None:
        cmd.finish(words=list(words), user=cmd.user_id, mid=cmd.mid,
                   commander=cmd.commander or "none")

    @command(name="timed")
    async def timed(self, cmd: Command, seconds: float) -> None:
        await asyncio.sleep(seconds)


@asynccontextmanager
async def connected(actor: LegacyActor) -> AsyncIterator[LineClient]:
    async with actor:
        client = await LineClient.connect(actor.port)
        try:
            await client.read_greeting()
            yield client
        finally:
            await client.close()


def codes(lines: list[str]) -> list[str]:
    return [code_of(ln) for ln in lines]


@aio_test
async def test_builtin_commands() -> None:
    async with connected(Shutter()) as client:
        assert await client.command("ping", 1) == ["1 1 > ", '1 1 : text="Pong."']
        assert await client.command("version", 2) == ["1 2 > ", '1 2 : version="1.0.0"']
        status = await client.command("status", 3)
        assert status == ["1 3 > ", '1 3 i actor=shutter; version="1.0.0"; num_users=1; users=1; '
                          "commands_running=1", "1 3 : "]
        listing = await client.command("help", 4)
        assert listing[0] == "1 4 > " and listing[-1] == "1 4 : "
        assert '1 4 i help="open [--delay FLOAT]: Open the shutter."' in listing
        assert '1 4 i help="add A [--b INT]: A plain (not async) command function."' in listing
        assert '1 4 i help="fail_me"' in listing and '1 4 i help="ping: Check that the actor is ' \
            'alive."' in listing
        assert await client.command("help open", 5) == [
            "1 5 > ", '1 5 i help="Usage: open [--delay FLOAT]"', '1 5 i help="Open the shutter."',
            '1 5 i help="Takes DELAY seconds."', "1 5 : "]
        assert await client.command("open --help", 6) == [
            ln.replace("1 5 ", "1 6 ") for ln in await client.command("help open", 5)]
        assert (await client.command("--help", 7))[1:-1] == [
            ln.replace("1 4 ", "1 7 ") for ln in listing[1:-1]]
        assert (await client.command("help nosuch", 8))[-1] == (
            "1 8 f error=\"Unknown command 'nosuch'. Send 'help' for the list of commands.\"")


@aio_test
async def test_headers_and_started_reply_first() -> None:
    async with connected(Shutter()) as client:
        await client.send("APO.john 5 echo a")
        assert await client.read_reply(5) == [
            "1 5 > ", "1 5 : words=a; user=1; mid=5; commander=APO.john"]
        await client.send("1 6 echo")  # tron's cid mid form: mid 6
        assert await client.read_reply(6) == ["1 6 > ", "1 6 : words; user=1; mid=6; commander=none"]
        await client.send("echo x y")  # no mid: 0
        assert await client.read_reply(0) == ["1 0 > ", "1 0 : words=x,y; user=1; mid=0; "
                                                        "commander=none"]


@aio_test
async def test_mid_first_actor() -> None:
    actor = LegacyActor("tcc", version="2", mid_first=True)
    async with actor:
        client = await LineClient.connect(actor.port)
        assert await client.read_greeting() == [
            "0 1 i yourUserID=1; num_users=1", "0 0 i UserInfo=1,127.0.0.1", '0 1 i version="2"']
        await client.send("17 ping")
        assert await client.read_until(lambda ln: code_of(ln) == ":") == [
            "17 1 > ", '17 1 : text="Pong."']
        await client.close()


@aio_test
async def test_commands_run_concurrently() -> None:
    async with connected(Shutter()) as client:
        await client.send("1 slow 0.5 --label first")
        await client.send("2 slow 0.01 --label second")
        await client.send("3 ping")
        lines = await client.read_reply(1)
        assert lines[0] == "1 1 > ", lines
        assert lines.index("1 1 i label=first") < lines.index('1 3 : text="Pong."')
        terminal = [ln for ln in lines if code_of(ln) in TERMINAL]
        assert terminal == ['1 3 : text="Pong."', "1 2 : label=second", "1 1 : label=first"]


@aio_test
async def test_failures_exceptions_timeouts_and_unknown(caplog) -> None:
    async with connected(Shutter()) as client:
        assert await client.command("fail_me", 1) == [
            "1 1 > ", '1 1 f error="fail_me always fails"']
        with caplog.at_level(logging.ERROR, logger="bridge.legacy.actor"):
            assert await client.command("boom", 2) == [
                "1 2 > ", '1 2 i text="about to fail"',
                "1 2 f error=\"Command 'boom' failed: ValueError: kaputt\""]
        assert "kaputt" in caplog.text  # the traceback is logged
        assert await client.command("ping", 3) == ["1 3 > ", '1 3 : text="Pong."']  # still serving
        assert await client.command("hang", 4) == [
            "1 4 > ", '1 4 f error="Command timed out after 0.2 s."']
        assert await client.command("nosuch 1 2", 5) == [
            "1 5 > ", "1 5 f error=\"Unknown command 'nosuch'. Send 'help' for the list of "
                      "commands.\""]
        assert await client.command("quiet", 6) == ["1 6 > ", "1 6 : "]
        assert await client.command("add 2 --b 40", 7) == ["1 7 > ", "1 7 : sum=42"]


@aio_test
async def test_bad_arguments_fail_with_usage() -> None:
    async with connected(Shutter()) as client:
        assert (await client.command("open --delay soon", 1))[-1] == (
            "1 1 f error=\"Bad arguments for 'open': invalid value 'soon' for --delay (expected "
            "float). Usage: open [--delay FLOAT]\"")
        assert (await client.command("add", 2))[-1] == (
            "1 2 f error=\"Bad arguments for 'add': missing argument A. Usage: add A [--b INT]\"")
        assert (await client.command('add 1 "2', 3))[-1].startswith(
            "1 3 f error=\"Bad arguments for 'add': cannot split arguments")
        assert (await client.command("slow 1 2 3", 4))[-1] == (
            "1 4 f error=\"Bad arguments for 'slow': unexpected extra arguments: 2 3. "
            "Usage: slow SECONDS [--label TEXT]\"")


@aio_test
async def test_value_formatting_and_writes_after_the_end(caplog) -> None:
    actor = Shutter()
    async with connected(actor) as client:
        assert await client.command("values", 1) == [
            "1 1 > ",
            '1 1 i flag=T; off=F; nothing=None; items=1,"a b",2.5; ambiguous="T"; '
            'number_text="42"; mode=fast; empty',
            '1 1 w text="careful"',
            '1 1 e error="bad but going on"',
            "1 1 d dbg=x; more=1",
            '1 1 : text="all done"',
        ]
        with caplog.at_level(logging.WARNING):
            assert await client.command("late", 2) == ["1 2 > ", "1 2 : first=1"]
            assert await client.command("ping", 3) == ["1 3 > ", '1 3 : text="Pong."']
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len([w for w in warnings if "after the end" in w]) == 2
        assert actor.running == {}


@aio_test
async def test_stop_fails_running_commands_exactly_once() -> None:
    actor = Shutter()
    await actor.start()
    client = await LineClient.connect(actor.port)
    await client.read_greeting()
    for mid in (1, 2, 3):
        await client.send(f"{mid} hold")
    await client.send("4 slow 30")
    await client.read_until(lambda ln: ln.startswith("1 4 i"))
    assert actor.started == 3 and len(actor.running) == 4
    await actor.stop()
    rest = (await client.expect_closed()).decode().splitlines()
    terminal = sorted(ln for ln in client.lines + rest if code_of(ln) in TERMINAL)
    assert terminal == [f'1 {mid} f error="Actor shutter is stopping."' for mid in (1, 2, 3, 4)]
    assert actor.running == {} and actor.server.commands_in_flight == []


@aio_test
async def test_client_disconnecting_mid_command(caplog) -> None:
    actor = Shutter()
    async with actor:
        client = await LineClient.connect(actor.port)
        await client.read_greeting()
        await client.send("1 slow 0.2")
        await client.read_until(lambda ln: ln.startswith("1 1 i"))
        with caplog.at_level(logging.DEBUG):
            await client.close()
            await _until(lambda: not actor.running)
        assert actor.server.commands_in_flight == [] and actor.users == {}
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        # The actor still serves new users.
        again = await LineClient.connect(actor.port)
        await again.read_greeting()
        assert await again.command("ping", 2) == ["1 2 > ", '1 2 : text="Pong."']
        await again.close()


@aio_test
async def test_function_based_actor_and_overridden_status() -> None:
    actor = LegacyActor("camera", version="0.3")

    @actor.command()
    async def expose(cmd: Command, exptime: float, *, dark: bool = False) -> None:
        """Take an exposure."""
        cmd.finish(exptime=exptime, dark=dark)

    @actor.command(name="fail-later", timeout=0.1)
    async def fail_later(cmd: Command) -> None:
        await asyncio.sleep(10)

    @actor.command
    async def status(cmd: Command) -> None:
        cmd.finish(camera="idle")

    assert set(actor.commands) == {"expose", "fail-later", "status", "ping", "version", "help"}
    async with connected(actor) as client:
        assert await client.command("expose 1.5 --dark", 1) == ["1 1 > ", "1 1 : exptime=1.5; dark=T"]
        assert await client.command("fail-later", 2) == [
            "1 2 > ", '1 2 f error="Command timed out after 0.1 s."']
        assert await client.command("status", 3) == ["1 3 > ", "1 3 : camera=idle"]


@aio_test
async def test_default_time_limit_and_async_context() -> None:
    actor = Shutter(command_timeout=0.1)
    async with connected(actor) as client:
        assert (await client.command("timed 5", 1))[-1] == (
            '1 1 f error="Command timed out after 0.1 s."')
        assert (await client.command("timed 0", 2))[-1] == "1 2 : "
    assert not actor.server.listening


@aio_test
async def test_run_until_stop_event() -> None:
    one, two = Shutter(), LegacyActor("other")
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.ensure_future(run(one, two, stop_event=stop, signals=(), on_started=ready.set))
    await asyncio.wait_for(ready.wait(), 10)
    client = await LineClient.connect(two.port)
    await client.read_greeting()
    assert await client.command("ping", 1) == ["1 1 > ", '1 1 : text="Pong."']
    stop.set()
    await asyncio.wait_for(task, 10)
    assert await client.expect_closed() == b""
    assert not one.server.listening and not two.server.listening


# -- fuzzing -------------------------------------------------------------------------------

SENTINEL = 987654321987

fuzz_texts = st.one_of(
    st.sampled_from(["ping", "echo", "add", "add 1", "add x", "help", "help add", "--help",
                     "values", "nosuch", "add 1 --b", "echo 'a", "version", "fail_me"]),
    # No surrogates: a line is bytes on the wire, and lone surrogates have no UTF-8 form.
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
            max_size=40),
)
fuzz_lines = st.one_of(
    st.builds(
        lambda cmdr, mids, sep, text: (f"{cmdr}{sep}" if cmdr else "")
        + "".join(f"{m}{sep}" for m in mids) + text,
        st.sampled_from(["", "APO.john", ".hub", "a.b.c", "x_y", "1a.b"]),
        st.lists(st.integers(0, 2**40), max_size=2),
        st.sampled_from([" ", "\t", "  "]),
        fuzz_texts,
    ).map(str.encode),
    st.binary(max_size=60).filter(lambda b: b"\n" not in b),
)


@pytest.fixture
def fuzz_actor():
    actor = Shutter()
    client = pytest_twisted.blockon(as_deferred(_start_fuzz(actor)))
    yield client
    pytest_twisted.blockon(as_deferred(_stop_fuzz(actor, client)))


async def _start_fuzz(actor: LegacyActor) -> LineClient:
    await actor.start()
    client = await LineClient.connect(actor.port)
    await client.read_greeting()
    return client


async def _stop_fuzz(actor: LegacyActor, client: LineClient) -> None:
    await client.close()
    await actor.stop()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=fuzz_lines)
@aio_test  # pytest-twisted runs each example's Deferred to completion
async def test_fuzzed_lines_get_exactly_one_terminal_reply(fuzz_actor: LineClient,
                                                           raw: bytes) -> None:
    assume(str(SENTINEL).encode() not in raw)
    body = raw[:-1] if raw.endswith(b"\r") else raw
    assume(body.decode("utf-8", "replace").strip())  # blank lines are ignored by design
    await fuzz_actor.send(raw + b"\n" + f"{SENTINEL} ping\n".encode())
    lines = await fuzz_actor.read_reply(SENTINEL, timeout=10)
    terminal = [ln for ln in lines if code_of(ln) in TERMINAL and mid_of(ln) != SENTINEL]
    assert len(terminal) == 1, (raw, lines)


async def _until(predicate, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def test_command_method_may_not_replace_actor_methods() -> None:
    with pytest.raises(TypeError, match=r"may not replace LegacyActor.stop.*name='stop'"):

        class Bad(LegacyActor):
            @command
            async def stop(self, cmd: Command) -> None:
                pass

    class Good(LegacyActor):
        @command(name="stop")
        async def stop_motion(self, cmd: Command) -> None:
            cmd.finish(stopped=True)

    assert "stop" in Good("good").commands
