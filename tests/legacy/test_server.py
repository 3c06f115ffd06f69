"""LegacyServer on real loopback sockets: greeting, users, headers, routing, malformed input."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from bridge.core import CommandHandle, Reply
from bridge.legacy.framing import SEND_PIECE, SENT_AT_ONCE
from bridge.legacy.server import IncomingLegacyCommand, LegacyServer
from bridge.protocol import Keyword
from tests.legacy.line_client import LineClient, code_of
from tests.support.aio import aio_test


class RecordingHandler:
    """Commands by verb: ``echo`` (finishes with what it saw), ``hold`` (waits for
    ``release``), ``raise``/``araise`` (sync/async exception), ``forget`` (returns
    without a terminal reply), ``twice`` (two terminal replies), ``info`` (an ``i`` line)."""

    def __init__(self) -> None:
        self.seen: list[IncomingLegacyCommand] = []
        self.release = asyncio.Event()
        self.held = 0

    def handle(self, command: IncomingLegacyCommand):  # noqa: ANN201 - sync or coroutine
        self.seen.append(command)
        verb = command.text.split()[0]
        if verb == "raise":
            raise RuntimeError("sync boom")
        if verb == "echo":
            command.finish({"commander": command.commander, "mid": command.mid,
                            "user": command.user_id, "text": command.text})
            return None
        if verb == "forget":
            return None
        if verb == "twice":
            command.finish()
            command.reply("f", {"error": "second"})
            return None
        return self._async(command, verb)

    async def _async(self, command: IncomingLegacyCommand, verb: str) -> None:
        if verb == "araise":
            await asyncio.sleep(0)
            raise ValueError("async boom")
        if verb == "hold":
            command.reply("i", {"held": True})
            self.held += 1
            await self.release.wait()
            command.finish({"released": True})
        elif verb == "info":
            command.reply("i", [Keyword.of("note", "hello world")])
            command.finish()
        elif verb == "aforget":
            await asyncio.sleep(0)
        else:
            command.fail(f"unknown verb {verb}")


async def started(handler: RecordingHandler | None = None, **kwargs) -> LegacyServer:
    server = LegacyServer(handler or RecordingHandler(), name="srv", version="1.2.3", **kwargs)
    return await server.start()


@aio_test
async def test_greeting_bytes_and_user_ids() -> None:
    server = await started()
    try:
        assert server.port > 0
        first = await LineClient.connect(server.port)
        raw = await asyncio.wait_for(first.reader.readuntil(b'version="1.2.3"\n'), 10)
        assert raw == (b"1 0 i yourUserID=1; num_users=1\n"
                       b"0 0 i UserInfo=1,127.0.0.1\n"
                       b'1 0 i version="1.2.3"\n')
        second = await LineClient.connect(server.port)
        assert await second.read_greeting() == [
            "2 0 i yourUserID=2; num_users=2",
            "0 0 i UserInfo=1,127.0.0.1",
            "0 0 i UserInfo=2,127.0.0.1",
            '2 0 i version="1.2.3"',
        ]
        # Everybody learns the user list (clu's behaviour).
        assert [await first.read_line(), await first.read_line()] == [
            "0 0 i UserInfo=1,127.0.0.1", "0 0 i UserInfo=2,127.0.0.1"]
        assert server.users == {1: "127.0.0.1", 2: "127.0.0.1"}

        # clu's rule: 1 if nobody is connected, else max + 1 (so ids are reused).
        await second.close()
        await _until(lambda: server.num_users == 1)
        third = await LineClient.connect(server.port)
        assert (await third.read_line()).startswith("2 0 i yourUserID=2; num_users=2")
        await first.close()
        await _until(lambda: server.num_users == 1)
        fourth = await LineClient.connect(server.port)
        assert (await fourth.read_line()).startswith("3 0 i yourUserID=3; num_users=2")
        await third.close()
        await fourth.close()
    finally:
        await server.stop()


@aio_test
async def test_command_header_forms() -> None:
    handler = RecordingHandler()
    server = await started(handler)
    client = await LineClient.connect(server.port)
    try:
        await client.read_greeting()
        await client.send("1 echo")
        assert await client.read_line() == "1 1 : commander=None; mid=1; user=1; text=echo"
        await client.send("APO.john 5 echo a b")
        assert await client.read_line() == (
            '1 5 : commander=APO.john; mid=5; user=1; text="echo a b"')
        await client.send("7 5 echo")  # tron's MCP form: cid mid text
        assert await client.read_line() == "1 5 : commander=None; mid=5; user=1; text=echo"
        assert handler.seen[-1].header_cid == 7
        await client.send("   echo  x  ")  # no mid: 0
        assert await client.read_line() == '1 0 : commander=None; mid=0; user=1; text="echo  x"'
        await client.send(".hub 3 echo\r")  # CRLF and a leading-dot commander
        assert await client.read_line() == "1 3 : commander=.hub; mid=3; user=1; text=echo"
        assert [c.line for c in handler.seen][1] == "APO.john 5 echo a b"
    finally:
        await client.close()
        await server.stop()


@aio_test
async def test_mid_first_header_order() -> None:
    server = await started(mid_first=True)
    client = await LineClient.connect(server.port)
    try:
        assert await client.read_greeting() == [
            "0 1 i yourUserID=1; num_users=1",
            "0 0 i UserInfo=1,127.0.0.1",
            '0 1 i version="1.2.3"',
        ]
        await client.send("42 echo")
        assert await client.read_line() == "42 1 : commander=None; mid=42; user=1; text=echo"
        server.broadcast("w", {"alert": "hot"})
        assert await client.read_line() == "0 0 w alert=hot"
    finally:
        await client.close()
        await server.stop()


@aio_test
async def test_replies_only_to_issuer_broadcasts_to_all() -> None:
    handler = RecordingHandler()
    server = await started(handler)
    one = await LineClient.connect(server.port)
    two = await LineClient.connect(server.port)
    try:
        await one.read_until(lambda ln: ln == "0 0 i UserInfo=2,127.0.0.1")
        await two.read_greeting()
        await one.send("9 info")
        assert await one.read_line() == '1 9 i note="hello world"'
        assert await one.read_line() == "1 9 : "
        await two.send("9 echo")
        assert await two.read_line() == "2 9 : commander=None; mid=9; user=2; text=echo"
        server.broadcast("i", {"text": "to all"})
        assert await one.read_line() == '0 0 i text="to all"'  # nothing of user 2's reply
        assert await two.read_line() == '0 0 i text="to all"'
        assert server.send_to_user(2, "w", {"only": 2})
        assert not server.send_to_user(99, "w", {"only": 99})
        assert await two.read_line() == "2 0 w only=2"
        server.broadcast("d", {"sync": 1})  # proves user 1 got nothing in between
        assert await one.read_line() == "0 0 d sync=1"
    finally:
        await one.close()
        await two.close()
        await server.stop()


@aio_test
async def test_handler_errors_get_one_failure_and_server_keeps_serving(caplog) -> None:
    handler = RecordingHandler()
    server = await started(handler)
    client = await LineClient.connect(server.port)
    try:
        await client.read_greeting()
        with caplog.at_level(logging.ERROR, logger="bridge.legacy.server"):
            await client.send("1 raise")
            assert await client.read_line() == (
                "1 1 f error=\"Command 'raise' failed: RuntimeError: sync boom\"")
            await client.send("2 araise now")
            assert await client.read_line() == (
                "1 2 f error=\"Command 'araise now' failed: ValueError: async boom\"")
            await client.send("3 forget")
            assert await client.read_line() == (
                '1 3 f error="Command ended without a final reply (internal error)."')
            await client.send("4 aforget")
            assert code_of(await client.read_line()) == "f"
            await client.send("5 twice")
            assert await client.read_line() == "1 5 : "
            await client.send("6 echo")  # the second terminal reply of 5 was never written
            assert await client.read_line() == "1 6 : commander=None; mid=6; user=1; text=echo"
        assert "sync boom" in caplog.text and "async boom" in caplog.text
        assert server.commands_in_flight == []
    finally:
        await client.close()
        await server.stop()


@aio_test
async def test_malformed_input_answered_on_that_connection_only() -> None:
    handler = RecordingHandler()
    server = await started(handler, max_line_length=100)
    client = await LineClient.connect(server.port)
    other = await LineClient.connect(server.port)
    try:
        await client.read_until(lambda ln: ln == "0 0 i UserInfo=2,127.0.0.1")
        await other.read_greeting()
        # Oversize line (also in the same segment as a good one): f with mid 0, kept.
        await client.send(b"1 echo " + b"x" * 200 + b"\n2 echo\n")
        line = await client.read_line()
        assert line.startswith('1 0 f error="Line too long (207 bytes or more; the limit is 100)')
        assert await client.read_line() == "1 2 : commander=None; mid=2; user=1; text=echo"
        # Invalid UTF-8: answered with f for its mid, never run.
        count = len(handler.seen)
        await client.send(b"3 echo caf\xe9\n")
        assert await client.read_line() == '1 3 f error="Command is not valid UTF-8; it was not run."'
        assert len(handler.seen) == count
        # A header without a command.
        await client.send("APO.john 4   ")
        assert await client.read_line() == (
            "1 4 f error=\"No command in 'APO.john 4': expected [commander] [mid] command.\"")
        await client.send("5 6 ")
        assert code_of(line := await client.read_line()) == "f" and line.startswith("1 6 f")
        # Empty and blank lines are ignored.
        await client.send(b"\n   \n\t\r\n\r\n")
        # NUL bytes are ordinary characters (escaped on output).
        await client.send(b"7 echo a\x00b\n")
        assert await client.read_line() == (
            '1 7 : commander=None; mid=7; user=1; text="echo a\\u0000b"')
        server.broadcast("d", {"sync": 1})
        assert await other.read_line() == "0 0 d sync=1"  # user 2 saw none of the errors
        assert await client.read_line() == "0 0 d sync=1"
    finally:
        await client.close()
        await other.close()
        await server.stop()


@aio_test
async def test_stop_fails_commands_in_flight_once_and_closes() -> None:
    handler = RecordingHandler()
    server = await started(handler)
    port = server.port
    client = await LineClient.connect(port)
    await client.read_greeting()
    for mid in (1, 2, 3):
        await client.send(f"{mid} hold")
    await _until(lambda: handler.held == 3)
    assert len(server.commands_in_flight) == 3
    await server.stop(reason="Going away.")
    rest = (await client.expect_closed()).decode().splitlines()
    lines = [ln for ln in client.lines + rest if code_of(ln) in ":f"]
    assert sorted(lines) == [f'1 {mid} f error="Going away."' for mid in (1, 2, 3)]
    assert server.commands_in_flight == [] and server.num_users == 0
    assert not server.listening
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@aio_test
async def test_client_disconnecting_mid_command(caplog) -> None:
    handler = RecordingHandler()
    server = await started(handler)
    try:
        client = await LineClient.connect(server.port)
        await client.read_greeting()
        await client.send("1 hold")
        await _until(lambda: handler.held == 1)
        await client.close()
        await _until(lambda: server.num_users == 0)
        with caplog.at_level(logging.DEBUG, logger="bridge.legacy.server"):
            handler.release.set()
            await _until(lambda: not server.commands_in_flight)
            await asyncio.sleep(0.05)
        assert "reply dropped" in caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert server.commands_in_flight == []
        assert not server._tasks
    finally:
        await server.stop()


@aio_test
async def test_start_listens_on_loopback_and_stop_is_idempotent() -> None:
    server = await started()
    assert server.host == "127.0.0.1" and server.listening
    client = await LineClient.connect(server.port)
    assert client.writer.get_extra_info("peername")[0] == "127.0.0.1"
    await client.close()
    await server.stop()
    await server.stop()
    with pytest.raises(ValueError):
        server.broadcast("x", {})


async def _until(predicate, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


class HandleHandler:
    """Answers each command with a :class:`CommandHandle` the test drives, as the legacy
    face does: the handle's replies are written from its callback. ``relay`` relays
    every reply; ``drop`` relays none (the handle ends, the command is left open)."""

    def __init__(self) -> None:
        self.handles: list[CommandHandle] = []

    def handle(self, command: IncomingLegacyCommand) -> CommandHandle:
        def relay(reply: Reply) -> None:
            if command.text == "relay" and not command.finished:
                command.reply(reply.code, reply.keywords)

        handle = CommandHandle("actor", command.text, callback=relay)
        self.handles.append(handle)
        return handle


@aio_test
async def test_a_command_handle_is_followed_to_its_end() -> None:
    handler = HandleHandler()
    server = await started(handler)
    client = await LineClient.connect(server.port)
    try:
        await client.read_greeting()
        await client.send("1 relay")
        await _until(lambda: len(handler.handles) == 1)
        assert not server._tasks  # followed by a callback, not a task per command
        handler.handles[0].add_reply(Reply("i", "actor", values={"step": 1}))
        handler.handles[0].add_reply(Reply(":", "actor", values={"done": True}))
        assert [await client.read_line(), await client.read_line()] == [
            "1 1 i step=1", "1 1 : done=T"]
        await _until(lambda: not server.commands_in_flight)

        # The handle ends but the command got no terminal reply: the server answers f.
        await client.send("2 drop")
        await _until(lambda: len(handler.handles) == 2)
        handler.handles[1].add_reply(Reply(":", "actor"))
        assert await client.read_line() == (
            '1 2 f error="Command ended without a final reply (internal error)."')

        # Stopping with a handle still running: one f with the reason.
        await client.send("3 relay")
        await _until(lambda: len(handler.handles) == 3)
        await server.stop(reason="Going away.")
        rest = (await client.expect_closed()).decode().splitlines()
        assert rest == ['1 3 f error="Going away."']
        handler.handles[2].add_reply(Reply(":", "actor"))  # too late: nothing more is written
        assert server.commands_in_flight == []
    finally:
        await client.close()
        await server.stop()


@aio_test
async def test_a_reply_is_sent_in_its_turn_and_a_burst_in_one_send() -> None:
    handler = RecordingHandler()
    server = await started(handler)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        sock.sendall(b"1 hold\n")
        await _until(lambda: handler.held == 1)
        command = handler.seen[-1]
        received = b""
        while b"held=T" not in received:  # the greeting and the command's first line
            await asyncio.sleep(0.01)
            sock.setblocking(False)
            try:
                received += sock.recv(65536)
            except BlockingIOError:
                pass
        sock.settimeout(5)
        # No await until the recv: the event loop does not turn, so the line can only
        # arrive if writing it sent it.
        command.reply("i", {"now": 1})
        assert sock.recv(65536) == b"1 1 i now=1\n"
        await asyncio.sleep(0.05)
        # A burst in one turn: the first SENT_AT_ONCE lines go at once (one send each), the
        # rest together a turn later (one send for them all, not one per line).
        for k in range(SENT_AT_ONCE + 3):
            command.reply("i", {"burst": k})
        at_once = b"".join(b"1 1 i burst=%d\n" % k for k in range(SENT_AT_ONCE))
        received = b""
        while len(received) < len(at_once):
            received += sock.recv(65536)
        assert received == at_once
        await asyncio.sleep(0.05)
        assert sock.recv(65536) == b"".join(
            b"1 1 i burst=%d\n" % k for k in range(SENT_AT_ONCE, SENT_AT_ONCE + 3))
        command.finish()
        assert sock.recv(65536) == b"1 1 : \n"
    finally:
        sock.close()
        handler.release.set()
        await server.stop()


@aio_test
async def test_a_long_burst_leaves_in_pieces_before_its_turn_ends() -> None:
    """After the turn's first SENT_AT_ONCE lines, a burst (an actor's loop of replies)
    is sent each time SEND_PIECE bytes have gathered, while the loop still runs: the
    peer has the first pieces before the turn ends; the rest follows a turn later."""
    handler = RecordingHandler()
    server = await started(handler)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        command = await _held_command(server, handler, sock)
        sock.setblocking(True)
        sock.settimeout(5)
        count = SENT_AT_ONCE + 3 * SEND_PIECE // 16
        for k in range(count):  # no await: the event loop does not turn meanwhile
            command.reply("i", {"burst": k})
        expected = b"".join(b"1 1 i burst=%d\n" % k for k in range(count))
        received = b""
        sock.setblocking(False)
        try:
            while True:
                received += sock.recv(1 << 20)
        except BlockingIOError:
            pass
        # More than the lines sent at once has arrived, not yet all of it.
        at_once = b"".join(b"1 1 i burst=%d\n" % k for k in range(SENT_AT_ONCE))
        assert len(at_once) + SEND_PIECE <= len(received) < len(expected)
        assert expected.startswith(received)
        sock.settimeout(5)
        while len(received) < len(expected):
            await asyncio.sleep(0.01)
            try:
                received += sock.recv(1 << 20)
            except BlockingIOError:
                pass
        assert received == expected
    finally:
        sock.close()
        handler.release.set()
        await server.stop()


async def _held_command(server: LegacyServer, handler: RecordingHandler,
                       sock: socket.socket) -> IncomingLegacyCommand:
    """Send ``1 hold`` on ``sock`` and read up to its first reply (the greeting first)."""
    sock.sendall(b"1 hold\n")
    await _until(lambda: handler.held == 1)
    received = b""
    sock.setblocking(False)
    while b"held=T" not in received:
        await asyncio.sleep(0.01)
        try:
            received += sock.recv(65536)
        except BlockingIOError:
            pass
    return handler.seen[-1]


@aio_test
async def test_what_the_socket_does_not_take_at_once_is_buffered_and_sent_in_order() -> None:
    """A line is sent straight on the socket when nothing is buffered; what the socket
    does not take (a partial send, then EAGAIN) stays in Twisted's buffer, and the lines
    written after it go out behind it, in order, once the peer reads."""
    from twisted.internet import reactor

    handler = RecordingHandler()
    server = await started(handler)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    try:
        command = await _held_command(server, handler, sock)
        transport = next(iter(server._users.values())).transport
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        # Sent whole: nothing left in Twisted's buffer, the socket not registered for
        # writing (a writer left registered would spin the reactor).
        command.reply("i", {"small": 1})
        assert not transport.dataBuffer and not transport._tempDataLen
        assert transport not in reactor.getWriters()
        big = "x" * 100_000
        command.reply("i", {"big": big})  # more than the kernel takes while nobody reads
        assert transport._tempDataLen or transport.dataBuffer, "all of it was sent?"
        assert transport in reactor.getWriters()
        for k in range(SENT_AT_ONCE + 2):  # behind the rest of the big line
            command.reply("i", {"after": k})
        handler.release.set()  # the command finishes: its : goes last
        expected = (b"1 1 i small=1\n" + b"1 1 i big=" + big.encode() + b"\n"
                    + b"".join(b"1 1 i after=%d\n" % k for k in range(SENT_AT_ONCE + 2))
                    + b"1 1 : released=T\n")
        received = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(received) < len(expected) and loop.time() < deadline:
            await asyncio.sleep(0.01)
            try:
                received += sock.recv(65536)
            except BlockingIOError:
                pass
        assert received == expected
        await _until(lambda: transport not in reactor.getWriters())
        assert not transport.dataBuffer and not transport._tempDataLen
    finally:
        sock.close()
        handler.release.set()
        await server.stop()


@aio_test
async def test_a_reply_to_a_peer_that_reset_the_connection_is_dropped_and_it_closes(
        caplog) -> None:
    """The send fails (the peer reset the connection, the server has not read that yet):
    the line is left to Twisted, whose next write reports the error and closes the
    connection as for any lost peer; the server serves others on."""
    handler = RecordingHandler()
    server = await started(handler)
    sock = socket.socket()
    sock.connect(("127.0.0.1", server.port))
    try:
        command = await _held_command(server, handler, sock)
        connection = next(iter(server._users.values()))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST, and no loop turn yet: the server still thinks it connected
        assert connection.connected
        with caplog.at_level(logging.ERROR):
            line = b"1 1 i into=\"the void\"\n"
            assert command.reply("i", {"into": "the void"})
            # The send failed: the line waits in Twisted's buffer for the reactor's write.
            transport = connection.transport
            assert bytes(transport.dataBuffer) + b"".join(transport._tempDataBuffer) == line
            await _until(lambda: server.num_users == 0)
        assert not connection.connected
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        client = await LineClient.connect(server.port)
        await client.read_greeting()
        await client.send("2 echo still here")
        assert code_of(await client.read_line()) == ":"
        await client.close()
    finally:
        sock.close()
        handler.release.set()
        await server.stop()


@aio_test
async def test_reading_straight_from_the_event_loop_and_back_to_the_reactor(caplog) -> None:
    """A connection's socket is read by the protocol's own event-loop callback (not the
    reactor's logging wrapper); pausing and resuming the transport gives reading back to
    the reactor, and lines are read either way; a bug in the framing drops the
    connection with the error logged, as the reactor's read does."""
    from twisted.internet import reactor

    handler = RecordingHandler()
    server = await started(handler)
    client = await LineClient.connect(server.port)
    try:
        await client.read_greeting()
        connection = next(iter(server._users.values()))
        transport = connection.transport
        assert transport in reactor.getReaders()
        await client.send("1 echo direct")
        assert code_of(await client.read_line()) == ":"
        assert connection.server.num_users == 1
        transport.pauseProducing()
        assert transport not in reactor.getReaders()
        await client.send("2 echo while paused")
        await asyncio.sleep(0.1)
        assert len(handler.seen) == 1  # not read while paused
        transport.resumeProducing()  # the reactor's own callback from now on
        assert transport in reactor.getReaders()
        assert code_of(await client.read_line()) == ":"
        assert len(handler.seen) == 2

        second = await LineClient.connect(server.port)
        await second.read_greeting()
        await _until(lambda: server.num_users == 2)
        other = server._users[2]

        def broken(_data: bytes) -> None:
            raise RuntimeError("framing bug")

        other.dataReceived = broken
        await second.send("3 echo boom")
        await _until(lambda: server.num_users == 1)
        assert "framing bug" in caplog.text
        await second.close()
        await client.send("4 echo still here")
        lines = await client.read_until(lambda line: code_of(line) == ":")
        assert "still here" in lines[-1]  # after the other user's UserInfo broadcasts
    finally:
        await client.close()
        await server.stop()


@aio_test
async def test_a_line_written_while_the_connection_closes_is_sent_then_it_closes() -> None:
    handler = RecordingHandler()
    server = await started(handler)
    client = await LineClient.connect(server.port)
    try:
        await client.read_greeting()
        await client.send("1 hold")
        await _until(lambda: handler.held == 1)
        connection = next(iter(server._users.values()))
        connection.transport.loseConnection()
        handler.seen[-1].reply("i", {"last": 1})
        rest = await client.expect_closed()
        assert rest.decode().splitlines()[-1] == "1 1 i last=1"
        await _until(lambda: server.num_users == 0)
    finally:
        handler.release.set()
        await client.close()
        await server.stop()


@aio_test
async def test_a_client_that_stops_reading_is_dropped_and_the_others_get_everything(
        caplog) -> None:
    """Tron buffers without end for a commander that never reads; we bound it
    (``max_unsent``, 16 MiB by default; 256 kB here): that client is dropped and logged,
    the process's memory stays bounded, and clients that read lose nothing."""
    server = await started(max_unsent=256 * 1024)
    loop = asyncio.get_running_loop()
    lazy = socket.socket()
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # little kept by the kernel
    lazy.setblocking(False)
    try:
        await loop.sock_connect(lazy, ("127.0.0.1", server.port))
        reader = await LineClient.connect(server.port)
        await reader.read_greeting()
        while server.num_users < 2:
            await asyncio.sleep(0.01)
        text = "x" * 1000
        got: list[str] = []
        sent = 0

        async def read_all() -> None:
            while True:
                line = await reader.read_line()
                if text in line:
                    got.append(line)

        reading = asyncio.ensure_future(read_all())
        try:
            # Lines of ~1 kB, 100 per turn, the reader keeps up; the kernel takes a few
            # MB for the lazy client (send buffer) before anything stays in the process.
            while server.num_users > 1:
                assert sent < 32_000, "the client that does not read was not dropped"
                for _ in range(100):
                    server.broadcast("i", {"text": text})
                sent += 100
                await asyncio.sleep(0.01)
            deadline = loop.time() + 10
            while len(got) < sent:
                assert loop.time() < deadline, f"the reader got {len(got)} of {sent} lines"
                await asyncio.sleep(0.01)
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        assert len(got) == sent and all(line.startswith("0 0 i text=x") for line in got)
        assert "the peer left more than" in caplog.text and "limit 262144" in caplog.text
        await reader.send("7 echo still here")
        assert code_of(await reader.read_line()) == ":"
    finally:
        lazy.close()
        await server.stop()
