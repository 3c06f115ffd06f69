"""A replaced route's target drains within the drain limit (issue 12), counting only its
own commands even when its lower layer is shared by several actors."""

import asyncio

from bridge.core import CommandHandle, Reply
from bridge.core.routing import PreferAmqpTarget, Route, Router, RoutingTable
from tests.support.aio import aio_test


class HoldingTarget:
    """Holds every command until ``release()``; ``stop(reason)`` fails what still runs."""

    def __init__(self, route=None):
        self.handles: list[CommandHandle] = []
        self.stopped_with: list[str | None] = []

    @property
    def in_flight(self):
        return sum(not h.done() for h in self.handles)

    def send_command(self, actor, text, *, commander=None, callback=None, time_limit=None):
        handle = CommandHandle(actor, text, commander=commander, callback=callback)
        self.handles.append(handle)
        return handle

    def release(self):
        for h in self.handles:
            if not h.done():
                h.add_reply(Reply(":", h.actor))

    async def stop(self, reason=None):
        self.stopped_with.append(reason)
        for h in self.handles:
            h.fail(reason or "stopped")


@aio_test
async def test_a_replaced_target_fails_what_runs_after_the_drain_limit_saying_so():
    old, new = HoldingTarget(), HoldingTarget()
    targets = iter([old, new])
    router = Router({"legacy": lambda route: next(targets)})
    router.drain_limit = 0.3
    await router.apply(RoutingTable([Route("shutter", "legacy", "h", 1)]))
    running = router.send_command("shutter", "slow")
    await router.apply(RoutingTable([Route("shutter", "legacy", "h", 2)]))
    assert router.target("shutter") is new and not running.done()  # not waited for
    await asyncio.wait_for(running.wait(), 5)
    assert running.failed and "drain limit" in running.error and "0.3 s" in running.error
    assert len(old.stopped_with) == 1 and "drain limit" in old.stopped_with[0]


@aio_test
async def test_a_replaced_target_whose_commands_end_is_stopped_without_failing_any():
    old, new = HoldingTarget(), HoldingTarget()
    targets = iter([old, new])
    router = Router({"legacy": lambda route: next(targets)})
    router.drain_limit = 30
    await router.apply(RoutingTable([Route("shutter", "legacy", "h", 1)]))
    running = router.send_command("shutter", "slow")
    await router.apply(RoutingTable([Route("shutter", "legacy", "h", 2)]))
    old.release()
    await asyncio.wait_for(running.wait(), 5)
    async with asyncio.timeout(5):
        while not old.stopped_with:
            await asyncio.sleep(0.02)
    assert running.succeeded and old.stopped_with == [None]


@aio_test
async def test_prefer_amqp_counts_only_its_own_commands_on_the_shared_amqp_target():
    primary, shared_amqp = HoldingTarget(), HoldingTarget()

    async def present(actor):
        return True

    target = PreferAmqpTarget("shutter", primary, shared_amqp, present, interval=60)
    await target.start()
    try:
        shared_amqp.send_command("camera", "expose")  # another actor's command
        assert shared_amqp.in_flight == 1 and target.in_flight == 0
        ours = target.send_command("shutter", "open")
        assert target.in_flight == 1
        await target.stop("drain limit reached")
        assert ours.failed and ours.error == "drain limit reached"
        await asyncio.sleep(0)  # the handle's done callbacks run
        assert target.in_flight == 0 and shared_amqp.handles[0].done() is False
    finally:
        await target.stop()


@aio_test
async def test_prefer_amqp_resends_what_the_gone_actor_never_started_and_only_that():
    """The AMQP actor stops with commands it never started (no reply at all, not even
    `>`): those go to the legacy side; one it had started fails as it did."""
    primary, amqp = HoldingTarget(), HoldingTarget()

    async def present(actor):
        return True

    target = PreferAmqpTarget("shutter", primary, amqp, present, interval=60)
    await target.start()
    try:
        queued = target.send_command("shutter", "whoami")
        started = target.send_command("shutter", "slow 1")
        amqp.handles[1].add_reply(Reply(">", "shutter"))
        gone = "Actor 'shutter' went away while the command was running (no consumer ...)."
        for handle in amqp.handles:
            handle.fail(gone)
        assert started.failed and started.error == gone
        assert not queued.done() and [h.text for h in primary.handles] == ["whoami"]
        assert target.side == "legacy"
        primary.release()
        await asyncio.wait_for(queued.wait(), 5)
        assert queued.succeeded
    finally:
        await target.stop()
