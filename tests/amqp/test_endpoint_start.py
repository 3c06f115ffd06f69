"""When an endpoint's handler starts: a plain function at once, a coroutine in its task.

The relay's handler (``AmqpFace._on_command``) is a plain function that sends the command
on to its legacy actor and returns an awaitable for the rest; the endpoint calls it in
the turn the delivery was read in, instead of waiting for the command task's first
turn. A coroutine handler runs in the task as before. Either way a handler that raises
gets its command failed, with exactly one terminal reply.

Acknowledgements: the exclusive commands queue (clu's) is consumed without them, so
nothing is written for a delivery; the shared queue of ``ha`` is consumed with acks,
and the ack is written before the handler starts (at most once: the ack leaves before
anything the command makes the bridge send). What the broker was told is checked with
``rabbitmqctl list_consumers``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from yarl import URL

from bridge.amqp import ActorEndpoint, IncomingCommand, writer
from tests.amqp.helpers import WAIT, amqp_connection, clu_client, clu_command, endpoint
from tests.support.aio import aio_test


async def _failed_once(done: Any, error: str) -> None:
    """``done`` (a clu command) failed with ``error`` in its one terminal reply."""
    await asyncio.sleep(0.2)  # a second terminal reply would arrive by now
    assert done.status.did_fail
    terminal = [r for r in done.replies if r.message_code in (":", "f", "!")]
    assert len(terminal) == 1
    assert error in terminal[0].message["error"]


@pytest.fixture
def acks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records ``ack`` when the endpoint writes an ack (the handlers record themselves)."""
    events: list[str] = []
    real = writer.ack

    def ack(channel: Any, tag: int) -> None:
        events.append("ack")
        real(channel, tag)

    monkeypatch.setattr(writer, "ack", ack)
    return events


def _ack_required(rabbitmq: Any, amqp_url: str, queue: str) -> list[str]:
    """The broker's ``ack_required`` of each consumer of ``queue`` (``true``/``false``)."""
    vhost = URL(amqp_url).path[1:] or "/"
    out = rabbitmq.ctl("list_consumers", "-p", vhost, "queue_name", "ack_required")
    return [line.split()[1] for line in out.splitlines()
            if line.split() and line.split()[0] == queue]


#: (ha, what the broker says of the consumer, the events before the command's task).
ACK_MODES = [pytest.param(False, ["false"], ["handler", "task"], id="exclusive-no-acks"),
             pytest.param(True, ["true"], ["ack", "handler", "task"], id="ha-ack-first")]


@pytest.mark.parametrize(("ha", "broker_says", "expected"), ACK_MODES)
@aio_test
async def test_a_plain_handler_starts_in_the_deliverys_turn(
        rabbitmq: Any, amqp_url: str, acks: list[str], ha: bool, broker_says: list[str],
        expected: list[str]) -> None:
    started: list[Any] = []

    def handler(cmd: IncomingCommand) -> Any:
        acks.append("handler")
        started.append(asyncio.current_task())

        async def rest() -> None:
            acks.append("task")
            await cmd.reply(">")
            await cmd.reply(":", {"text": "Pong."})

        return rest()

    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "c1") as client:
        ep = await ActorEndpoint(conn, "eager_ep", handler, ha=ha).start()
        try:
            assert await asyncio.to_thread(
                _ack_required, rabbitmq, amqp_url, "eager_ep_commands") == broker_says
            done = await asyncio.wait_for(clu_command(client, "eager_ep", "ping"), WAIT)
        finally:
            await ep.stop()
    assert done.status.did_succeed
    assert acks == expected
    # called from the reader, not from the task that awaits what it returned
    assert started[0] is None or not started[0].get_name().startswith("eager_ep:")


@pytest.mark.parametrize(("ha", "broker_says", "expected"), ACK_MODES)
@aio_test
async def test_a_coroutine_handler_runs_in_its_task(
        amqp_url: str, acks: list[str], ha: bool, broker_says: list[str],
        expected: list[str]) -> None:
    started: list[Any] = []

    async def handler(cmd: IncomingCommand) -> None:
        acks.append("handler")
        started.append(asyncio.current_task())
        await cmd.reply(":", {"text": "Pong."})

    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "c2") as client:
        ep = await ActorEndpoint(conn, "lazy_ep", handler, ha=ha).start()
        try:
            done = await asyncio.wait_for(clu_command(client, "lazy_ep", "ping"), WAIT)
        finally:
            await ep.stop()
    assert done.status.did_succeed
    assert acks == expected[:-1]
    assert started[0] is not None and started[0].get_name().startswith("lazy_ep:")


@aio_test
async def test_a_plain_handler_that_raises_fails_its_command_once(amqp_url: str) -> None:
    def handler(cmd: IncomingCommand) -> Any:
        raise RuntimeError("no way")

    async with endpoint(amqp_url, "raising_ep", handler), \
            clu_client(amqp_url, "c3") as client:
        done = await clu_command(client, "raising_ep", "ping")
        await _failed_once(done, "RuntimeError: no way")


@aio_test
async def test_a_future_from_a_plain_handler_is_watched_without_a_task(amqp_url: str) -> None:
    """The relay returns the future of its replies' publishing: the endpoint watches it
    (no task per command); if it fails, the command is failed once; at stop it is
    cancelled."""
    loop = asyncio.get_running_loop()
    futures: dict[str, asyncio.Future[None]] = {}
    tasks_while_running: list[int] = []

    def handler(cmd: IncomingCommand) -> Any:
        future = futures[cmd.command_string] = loop.create_future()
        if cmd.command_string == "ok":
            async def answer() -> None:
                tasks_while_running.append(len(ep._tasks))
                await cmd.reply(":", {"text": "fine"})
                future.set_result(None)
            loop.call_soon(lambda: asyncio.ensure_future(answer()))
        elif cmd.command_string == "broken":
            loop.call_soon(future.set_exception, RuntimeError("publishing broke"))
        return future

    async with endpoint(amqp_url, "future_ep", handler) as ep, \
            clu_client(amqp_url, "c4") as client:
        done = await clu_command(client, "future_ep", "ok")
        assert done.status.did_succeed and tasks_while_running == [0]
        failed = await clu_command(client, "future_ep", "broken")
        await _failed_once(failed, "RuntimeError: publishing broke")
        await client.send_command("future_ep", "hangs", await_command=False)
        for _ in range(200):
            if "hangs" in futures:
                break
            await asyncio.sleep(0.01)
        assert not futures["hangs"].done()
        await ep.stop()
        assert futures["hangs"].cancelled() and not ep._futures
