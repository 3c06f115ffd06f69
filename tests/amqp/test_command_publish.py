"""The commander writes a command's frames at once when nothing needs waiting for
(``AmqpCommander._publish_now``, :class:`~bridge.amqp.frames.CommandFrames`), and in a
task otherwise: the order of the commands stays, long commands arrive whole, a confirm
that does not come in time fails the command as before."""

from __future__ import annotations

import asyncio

from bridge.amqp.commander import AmqpCommander
from bridge.protocol.clu_messages import command_body, replies_binding_for
from tests.amqp.helpers import WAIT, amqp_connection, clu_actor, commander, wire_spy
from tests.amqp.test_frames import LONG
from tests.support.aio import aio_test


@aio_test
async def test_commands_keep_their_order_when_the_first_waits_for_its_binding(
    amqp_url: str,
) -> None:
    async with (
        wire_spy(amqp_url, binding="command.#") as spy,
        clu_actor(amqp_url, "cluactor"),
        amqp_connection(amqp_url) as conn,
    ):
        cmdr = await AmqpCommander(conn, "ordered", hear_all=False).start()
        try:
            # The first command to an actor waits for the replies binding (in a task);
            # the ones submitted meanwhile must not overtake it, nor those submitted
            # once the binding is made, before that task has published.
            handles = [cmdr.submit_command("cluactor", f"ping {i}") for i in range(10)]
            binding = replies_binding_for("ordered.cluactor", "cluactor")
            while binding not in cmdr._bindings:
                await asyncio.sleep(0)
            await cmdr._bindings[binding]
            assert cmdr._bound(binding) and cmdr._publishing
            handles += [cmdr.submit_command("cluactor", f"ping {i}") for i in range(10, 20)]
            await asyncio.wait_for(asyncio.gather(*(h.wait() for h in handles)), WAIT)
            ids = [h.command_id for h in handles]
            seen = await spy.wait_for(lambda m: m.correlation_id in ids, count=len(ids))
            assert [m.correlation_id for m in seen] == ids
            # Bound now: the next one is written at once, no task.
            later = cmdr.submit_command("cluactor", "ping")
            assert not cmdr._publishing
            await later.wait(WAIT)
            assert later.succeeded
        finally:
            await cmdr.stop()
    # clu's parser refuses the extra argument; what matters is that each got its answer
    assert all(h.done() and h.replies[-1].code in ":f" for h in handles)


@aio_test
async def test_a_long_command_reaches_the_actor_whole(amqp_url: str) -> None:
    async with (
        wire_spy(amqp_url, binding="command.#") as spy,
        clu_actor(amqp_url, "cluactor"),
        commander(amqp_url, "longcmdr") as cmdr,
    ):
        handle = cmdr.submit_command("cluactor", LONG)
        assert not cmdr._publishing  # written at once, in several body frames
        (message,) = await spy.wait_for(lambda m: m.correlation_id == handle.command_id)
        await handle.wait(WAIT)
    assert message.body == command_body(LONG) and len(message.body) > 131_072
    assert message.headers == {"command_id": handle.command_id,
                               "commander_id": "longcmdr.cluactor", "internal": False,
                               "write_to_log": True}
    assert message.reply_to == "longcmdr_replies"
    assert handle.done()


@aio_test
async def test_a_confirm_that_does_not_come_in_time_fails_the_command(amqp_url: str) -> None:
    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "slowcmdr") as cmdr:
        cmdr.publish_timeout = 1e-6
        # The confirm cannot come back in time: the commander's socket is not read
        # until the timer has fired (the command itself is written at once).
        reader = cmdr.connection.robust_connection.transport.connection \
            ._transport_factory.bound
        reader._transport.pause_reading()
        late = cmdr.submit_command("cluactor", "ping")
        assert not cmdr._publishing
        await asyncio.sleep(0.05)
        reader._transport.resume_reading()
        await late.wait(WAIT)
        assert late.failed and late.error == (
            "Could not send the command to 'cluactor': could not publish to "
            "'command.cluactor': the AMQP broker did not confirm within 1e-06 s")
        assert not cmdr.running
        cmdr.publish_timeout = WAIT
        handle = await cmdr.send_command("cluactor", "ping")
        await handle.wait(WAIT)
        assert handle.succeeded


@aio_test
async def test_a_callers_handle_is_tracked_itself(amqp_url: str) -> None:
    """``submit_command(handle=...)``: the relay's own handle is the one the commander
    tracks and answers (one handle per relayed command, not one wrapping another)."""
    from bridge.core import CommandHandle

    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "ownhandle") as cmdr:
        seen: list[str] = []
        mine = CommandHandle("cluactor", "ping", commander="APO.john", command_id="id-own-1",
                             callback=lambda reply: seen.append(reply.code))
        assert cmdr.submit_command("cluactor", "ping", command_id="id-own-1",
                                   handle=mine) is mine
        assert cmdr.running.get("id-own-1") is mine
        await mine.wait(WAIT)
        assert mine.succeeded and seen == [">", ":"] and mine.commander == "APO.john"
        for command_id, bad in (
            ("id-2", dict(handle=CommandHandle("cluactor", "ping", command_id="other"))),
            ("id-2", dict(handle=CommandHandle("elsewhere", "ping", command_id="id-2"))),
            ("id-2", dict(handle=CommandHandle("cluactor", "status", command_id="id-2"))),
            ("id-2", dict(handle=CommandHandle("cluactor", "ping", command_id="id-2"),
                          callback=print)),  # a callback besides the handle's own
            ("id-own-1", dict(handle=mine)),  # it has ended
        ):
            try:
                cmdr.submit_command("cluactor", "ping", command_id=command_id, **bad)
            except ValueError:
                pass
            else:
                raise AssertionError(f"accepted {bad}")
            assert command_id not in cmdr.running
