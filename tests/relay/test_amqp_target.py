"""AmqpTarget's bookkeeping of its own commands, with a stand-in for the AMQP commander."""

from __future__ import annotations

import asyncio

from bridge.core import Reply
from bridge.relay import amqp_target
from bridge.relay.amqp_target import AmqpTarget
from tests.faults.helpers import until
from tests.support.aio import aio_test


class FakeCommander:
    """What AmqpTarget uses of an AmqpCommander: submitted commands are kept, replies
    are delivered by the test (``submitted[id]``: the ``add_reply`` of the command's
    handle, ``heard`` for everything the commander's queue hears)."""

    def __init__(self) -> None:
        self.listeners: list = []
        self.submitted: dict[str, object] = {}

    def add_reply_listener(self, listener) -> None:  # noqa: ANN001
        self.listeners.append(listener)

    def listen_to(self, sender) -> None:  # noqa: ANN001
        pass

    def submit_command(self, actor, text, *, commander_id, command_id,  # noqa: ANN001
                       time_limit, handle) -> None:
        # the target's own handle is tracked (one handle per command): replies go to it
        assert handle.command_id == command_id and handle.actor == actor
        self.submitted[command_id] = handle.add_reply

    def heard(self, reply: Reply) -> None:
        for listener in self.listeners:
            listener(reply)


@aio_test
async def test_late_replies_of_our_ended_commands_are_ours_for_the_grace_then_foreign(
        monkeypatch) -> None:
    """A copy of a terminal reply heard after the command ended is not mirrored as the
    actor's traffic for LATE_REPLY_GRACE; after that (and at most FORGET_BATCH later)
    its id is forgotten. One timer serves every ended command."""
    monkeypatch.setattr(amqp_target, "LATE_REPLY_GRACE", 0.3)
    monkeypatch.setattr(amqp_target, "FORGET_BATCH", 0.05)
    commander = FakeCommander()
    target = AmqpTarget(commander)  # type: ignore[arg-type]
    foreign: list[Reply] = []
    target.add_reply_listener(foreign.append, sender="camera")
    loop = asyncio.get_running_loop()

    handles = []
    for k in range(3):
        handles.append(target.send_command("camera", "ping", commander="APO.john"))
        if k == 0:
            await asyncio.sleep(0.15)
    ids = [h.command_id for h in handles]
    assert target.in_flight == 3

    def done(command_id: str) -> Reply:
        return Reply(":", "camera", (), "APO.john.camera", command_id)

    ended_at = {}
    for command_id, handle in zip(ids, handles):
        commander.submitted[command_id](done(command_id))  # type: ignore[operator]
        commander.heard(done(command_id))  # the copy every listener hears: ours
        await asyncio.sleep(0)
        assert handle.done()
        ended_at[command_id] = loop.time()
    assert target.in_flight == 0 and not foreign
    assert target._ours._timer is not None  # one timer for all three

    # Within the grace: still ours.
    await asyncio.sleep(0.2)
    for command_id in ids:
        commander.heard(done(command_id))
    assert not foreign

    # Each id is forgotten once its grace is over (and no later than FORGET_BATCH).
    seen: dict[str, float] = {}
    deadline = loop.time() + 2
    while len(seen) < 3 and loop.time() < deadline:
        for command_id in ids:
            if command_id not in seen and command_id not in target._ours:
                seen[command_id] = loop.time()
        await asyncio.sleep(0.01)
    assert set(seen) == set(ids)
    for command_id in ids:
        kept = seen[command_id] - ended_at[command_id]
        assert 0.3 <= kept <= 0.3 + 0.05 + 0.1, (command_id, kept)
    assert not target._ours and target._ours._timer is None
    commander.heard(done(ids[0]))  # now another commander's reply, as far as we know
    assert [r.command_id for r in foreign] == [ids[0]]


@aio_test
async def test_another_commanders_terminal_reply_is_passed_on_once_within_the_grace(
        monkeypatch) -> None:
    """A second copy of another commander's terminal reply is dropped for
    LATE_REPLY_GRACE, then passed on again; many such commands share one timer."""
    monkeypatch.setattr(amqp_target, "LATE_REPLY_GRACE", 0.5)
    monkeypatch.setattr(amqp_target, "FORGET_BATCH", 0.05)
    commander = FakeCommander()
    target = AmqpTarget(commander)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    first_heard = loop.time()
    foreign: list[Reply] = []
    target.add_reply_listener(foreign.append, sender="camera")

    def done(command_id: str) -> Reply:
        return Reply(":", "camera", (), "APO.jane.camera", command_id)

    ids = [f"id-{k}" for k in range(50)]
    for command_id in ids:
        commander.heard(done(command_id))
    timer = target._ended_foreign._timer
    assert timer is not None
    for command_id in ids:
        commander.heard(done(command_id))  # the copies: dropped
    assert [r.command_id for r in foreign] == ids
    assert target._ended_foreign._timer is timer  # one timer for all fifty

    await asyncio.sleep(0.1)
    if loop.time() - first_heard < 0.45:  # (a busy machine may have slept past the grace)
        commander.heard(done(ids[1]))  # within the grace: still dropped
        assert len(foreign) == len(ids)
    await until(lambda: not target._ended_foreign, "the grace to end", timeout=5.0)
    assert target._ended_foreign._timer is None
    commander.heard(done(ids[0]))  # past the grace: a reply like any other
    assert [r.command_id for r in foreign] == [*ids, ids[0]]
