"""Router and RoutingTable logic, with in-process echo targets (the transports have their own tests)."""

import asyncio

import pytest

from bridge.core import CommandHandle, IssuedCommands, Reply
from bridge.core.routing import PreferAmqpTarget, Route, Router, RoutingTable, no_target
from bridge.protocol import Keyword
from tests.support.aio import aio_test


class EchoTarget:
    """Answers every command: ``i side=<name>`` then ``:`` (after ``delay``)."""

    def __init__(self, route, side=None, delay=0.0, routable=True):
        self.route, self.side, self.delay, self.routable = route, side or route.kind, delay, routable
        self.started = self.stopped = False
        self.in_flight = 0
        self.sent = []
        self.handles = []

    async def start(self):
        self.started = True

    async def stop(self):
        self.stopped = True

    def send_command(self, actor, text, *, commander=None, callback=None, time_limit=None):
        handle = CommandHandle(actor, text, commander=commander, callback=callback)
        self.handles.append(handle)
        self.sent.append(text)
        self.in_flight += 1

        async def answer():
            await asyncio.sleep(self.delay)
            if not self.routable:
                handle.fail(f"Failed routing message to consumer '{actor}'.")
            else:
                handle.add_reply(Reply("i", actor, (Keyword("side", (self.side,)),)))
                handle.add_reply(Reply(":", actor))
            self.in_flight -= 1

        asyncio.ensure_future(answer())
        return handle


def test_table_rejects_bad_routes():
    with pytest.raises(ValueError):
        Route("x", "legacy")
    with pytest.raises(ValueError):
        Route("x", "carrier-pigeon")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RoutingTable([Route("x", "amqp"), Route("x", "hub")])
    table = RoutingTable([Route("a", "amqp")]).with_route(Route("b", "legacy", "h", 1))
    assert table.actors() == ["a", "b"] and table.without("a").actors() == ["b"]


@aio_test
async def test_unknown_actor_fails_at_once_with_tron_text():
    router = Router({"amqp": EchoTarget})
    await router.start()
    handle = router.send_command("nosuch", "status")
    assert handle.failed and handle.replies[0].json["error"] == no_target("nosuch")


@aio_test
async def test_apply_keeps_unchanged_targets_and_drains_replaced_ones():
    events = []
    router = Router({"amqp": EchoTarget, "legacy": lambda r: EchoTarget(r, delay=0.2)},
                    RoutingTable([Route("cam", "amqp"), Route("shutter", "legacy", "h", 1)]))
    router.add_listener(lambda *e: events.append(e))
    await router.start()
    cam, shutter = router.target("cam"), router.target("shutter")
    assert cam.started and shutter.started
    in_flight = router.send_command("shutter", "open")
    diff = await router.apply(RoutingTable([Route("cam", "amqp"), Route("shutter", "amqp")]))
    assert diff == {"added": [], "changed": ["shutter"], "removed": []}
    assert router.target("cam") is cam and router.target("shutter") is not shutter
    assert not shutter.stopped  # still has a command in flight: drained, not cut
    assert (await in_flight).succeeded and in_flight.keywords["side"] == "legacy"
    await asyncio.sleep(0.15)
    assert shutter.stopped
    assert (await router.send_command("shutter", "open")).keywords["side"] == "amqp"
    diff = await router.apply(RoutingTable([Route("shutter", "amqp")]))
    assert diff["removed"] == ["cam"]
    assert ("shutter", "amqp", "route") in events
    await router.stop()


@aio_test
async def test_prefer_amqp_switches_both_ways_and_falls_back_on_unroutable():
    present = {"shutter": False}
    switches = []

    async def presence(actor):
        return present[actor]

    legacy = EchoTarget(Route("shutter", "legacy", "h", 1))
    amqp = EchoTarget(Route("shutter", "amqp"))
    target = PreferAmqpTarget("shutter", legacy, amqp, presence, switches.append, interval=0.05)
    await target.start()
    assert (await target.send_command("shutter", "s")).keywords["side"] == "legacy"
    present["shutter"] = True
    await asyncio.sleep(0.15)
    assert target.side == "amqp" and switches == ["amqp"]
    assert (await target.send_command("shutter", "s")).keywords["side"] == "amqp"
    # The AMQP actor vanished between two polls: the command still ends on the legacy side.
    amqp.routable = False
    present["shutter"] = False
    handle = await target.send_command("shutter", "s")
    assert handle.succeeded and handle.keywords["side"] == "legacy"
    assert [r.code for r in handle.replies] == ["i", ":"]
    assert switches == ["amqp", "legacy"]
    # The inner commands on both sides name the handle they were sent for, so whoever
    # sent it recognises their replies as its own (and others' as others').
    for inner in (amqp.handles[-1], legacy.handles[-1]):
        assert inner.on_behalf_of is handle
        assert inner.is_one_of({handle}) and not inner.is_one_of({legacy.handles[0]})
    assert legacy.handles[0].on_behalf_of is None  # the legacy side's own: not wrapped
    issued = IssuedCommands()
    assert issued.add(handle) is handle
    assert amqp.handles[-1] in issued and legacy.handles[-1] in issued
    assert legacy.handles[0] not in issued and "not a handle" not in issued
    await target.stop()


@aio_test
async def test_router_builds_prefer_amqp_wrappers():
    async def presence(actor):
        return True

    router = Router({"legacy": EchoTarget, "amqp": EchoTarget},
                    RoutingTable([Route("s", "legacy", "h", 1, prefer_amqp=True)]),
                    amqp_presence=presence)
    await router.start()
    assert router.side("s") == "amqp"
    assert (await router.send_command("s", "x")).keywords["side"] == "amqp"
    await router.stop()
