import asyncio

import pytest

from bridge.core import CommandHandle, CommandStatus, CommandTable, Reply
from bridge.protocol import Keyword
from tests.support.aio import aio_test


def reply(code: str, **kw: str) -> Reply:
    return Reply(code, "shutter", tuple(Keyword(k, (v,)) for k, v in kw.items()))


@aio_test
async def test_handle_collects_replies_and_resolves_on_terminal_code():
    seen = []
    handle = CommandHandle("shutter", "status", callback=seen.append)
    assert not handle.add_reply(reply(">"))
    assert not handle.add_reply(reply("i", shutter="open"))
    assert handle.add_reply(reply(":", moves="3"))
    assert (await handle) is handle
    assert handle.status is CommandStatus.DONE and handle.succeeded
    assert [r.code for r in seen] == [">", "i", ":"]
    assert handle.keywords == {"shutter": "open", "moves": 3}
    assert not handle.add_reply(reply("i"))  # after the end: ignored
    assert len(handle.replies) == 3


@aio_test
async def test_upper_case_and_fatal_codes_are_terminal_failures():
    for code in ("F", "f", "!"):
        handle = CommandHandle("tcc", "x")
        assert handle.add_reply(reply(code))
        assert (await handle).failed


@aio_test
async def test_async_callback_and_failing_callback_do_not_break_delivery():
    got = []

    async def cb(r):
        got.append(r.code)

    def bad(r):
        raise RuntimeError("boom")

    h1 = CommandHandle("a", "x", callback=cb)
    h1.add_reply(reply(":"))
    h2 = CommandHandle("a", "x", callback=bad)
    h2.add_reply(reply(":"))
    await asyncio.sleep(0)
    assert got == [":"] and h2.succeeded


@aio_test
async def test_table_time_limit_fail_all_and_no_leaks():
    table: CommandTable[int] = CommandTable()
    slow = table.add(1, CommandHandle("a", "slow"), time_limit=0.05)
    other = table.add(2, CommandHandle("a", "other"))
    await slow
    assert slow.failed and "timed out" in slow.replies[-1].json["error"]
    await asyncio.sleep(0)
    assert 1 not in table and len(table) == 1
    assert table.fail_all("connection lost") == 1
    assert (await other).failed and other.replies[-1].json == {"error": "connection lost"}
    assert len(table) == 0
    assert table.reply(2, reply(":")) is None


@aio_test
async def test_table_delivers_by_key_and_forgets_on_end():
    table: CommandTable[tuple[str, int]] = CommandTable()
    h = table.add(("APO.john", 5), CommandHandle("a", "x"))
    assert table.reply(("APO.john", 6), reply(":")) is None
    assert table.reply(("APO.john", 5), reply("i")) is h
    assert table.reply(("APO.john", 5), reply(":")) is h
    assert len(table) == 0 and h.succeeded


@aio_test
async def test_error_is_the_error_of_a_failure_and_none_otherwise():
    ok = CommandHandle("a", "x")
    assert ok.error is None
    ok.add_reply(reply(":", error="not a failure"))
    assert ok.succeeded and ok.error is None
    failed = CommandHandle("a", "x")
    failed.add_reply(reply("f", error="boom"))
    assert failed.error == "boom"
    bare = CommandHandle("a", "x")
    bare.add_reply(reply("!"))
    assert bare.error == "failed with code '!'"
    local = CommandHandle("a", "x")
    local.fail("connection lost")
    assert local.error == "connection lost"


@aio_test
async def test_wait_times_out_without_ending_the_command_then_returns_the_handle():
    handle = CommandHandle("a", "x")
    with pytest.raises(TimeoutError):
        await handle.wait(0.01)
    assert not handle.done()
    handle.add_reply(reply(":"))
    assert (await handle.wait(1)) is handle


@aio_test
async def test_done_callback_runs_once_with_the_handle():
    ended = []
    handle = CommandHandle("a", "x")
    handle.add_done_callback(ended.append)
    handle.add_reply(reply("i"))
    await asyncio.sleep(0)
    assert ended == []
    handle.fail("stop")
    handle.fail("again")
    await asyncio.sleep(0)
    assert ended == [handle]
    late = []
    handle.add_done_callback(late.append)  # already ended: called soon
    await asyncio.sleep(0)
    assert late == [handle]


@aio_test
async def test_issued_commands_tell_their_own_handles_and_keep_none_alive():
    import gc
    import weakref

    from bridge.core import IssuedCommands

    mine, theirs = IssuedCommands(), IssuedCommands()
    own = mine.add(CommandHandle("a", "x"))
    assert mine.add(own) is own and own.issuers == (mine,)  # added twice: named once
    other = theirs.add(CommandHandle("a", "y"))
    carried = CommandHandle("a", "x")  # what a prefer-AMQP target sends for ``own``
    carried.on_behalf_of = own
    assert own in mine and carried in mine and other not in mine
    assert other in theirs and own not in theirs and carried not in theirs
    assert CommandHandle("a", "z") not in mine and "not a handle" not in mine
    gone = weakref.ref(own)
    del own, carried
    gc.collect()
    assert gone() is None  # the issuer does not hold its handles
