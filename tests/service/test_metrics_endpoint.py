"""/metrics and /healthz of a bridge with real peers: a clu legacy shutter, RabbitMQ, a clu
client and a hub-port client. The counters must match a known sequence of commands,
failures, a time-out, a refusal and a reconnect, read back with prometheus-client's parser."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import clu_client
from tests.relay.test_legacy_face import LegacyClient
from tests.service.helpers import http_get, http_json, wait_until
from tests.support.aio import aio_test
from tests.support.ports import free_port

WAIT = 10.0


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(all_samples, metric: str, **labels: str) -> float:
    return all_samples[(metric, tuple(sorted(labels.items())))]


async def clu_send(client, actor, text):
    cmd = await client.send_command(actor, text, await_command=False)
    return await asyncio.wait_for(cmd, WAIT)


@aio_test
async def test_metrics_count_a_known_sequence(amqp_url, clu_shutter):
    hub_port = free_port()
    config = parse_config({
        "name": "metered", "http": {"port": 0}, "hub": {"port": hub_port},
        "actors": {"shutter": {"lives": "legacy", "port": clu_shutter.port, "time_limit": 1.0}},
    })
    async with Bridge(config, amqp_url) as bridge, clu_client(amqp_url, "metricsclient") as client:
        link = bridge.router.target("shutter")
        await link.start(wait=True)
        http = bridge.monitoring.http
        assert http is not None and http.host == "127.0.0.1" and http.port

        assert (await clu_send(client, "shutter", "status")).status.did_succeed
        assert (await clu_send(client, "shutter", "echo a b")).status.did_succeed
        assert (await clu_send(client, "shutter", "fail_me")).status.did_fail
        slow = await clu_send(client, "shutter", "slow 3")            # over the 1 s limit
        assert slow.status.did_fail and "timed out" in str(slow.replies[-1].message)

        # The actor goes away: a command is refused; it comes back: the link reconnects.
        clu_shutter.stop()
        await wait_until(lambda: link.state != "connected", what="link down")
        refused = await clu_send(client, "shutter", "status")
        assert refused.status.did_fail and "not connected" in str(refused.replies[-1].message)
        status, health = await http_json(http.port, "/healthz")
        assert (status, health["status"], health["code"]) == (200, "degraded", 1)
        assert "actor shutter link" in health["reason"]
        clu_shutter.restart()
        await asyncio.wait_for(link.start(wait=True, timeout=WAIT), WAIT + 1)
        assert (await clu_send(client, "shutter", "status")).status.did_succeed

        hub = await LegacyClient.connect(hub_port)
        try:
            hub.writer.write(b"me.you 7 shutter ping\n")
            await hub.line_matching(lambda line: line.startswith("me.you 7 shutter :"))
        finally:
            hub.close()

        status, headers, body = await http_get(http.port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        m = samples(body.decode())
        amqp = {"actor": "shutter", "side": "amqp"}
        assert value(m, "bridge_commands_received_total", **amqp) == 6
        ended = {o: value(m, "bridge_commands_ended_total", **amqp, outcome=o)
                 for o in ("done", "failed", "timeout", "refused")}
        assert ended == {"done": 3, "failed": 1, "timeout": 1, "refused": 1}
        assert value(m, "bridge_commands_in_flight", **amqp) == 0
        assert value(m, "bridge_command_duration_seconds_count", **amqp) == 5  # refusals untimed
        assert value(m, "bridge_command_duration_seconds_bucket", **amqp, le="+Inf") == 5
        assert value(m, "bridge_command_duration_seconds_bucket", **amqp, le="0.5") == 4
        assert value(m, "bridge_command_duration_seconds_sum", **amqp) >= 1.0
        assert value(m, "bridge_seconds_since_last_reply", **amqp) >= 0
        # status: 6 i + ':'; echo ':'; fail_me 'f'; slow: 'i' then the time-out 'f';
        # status again: 6 i + ':' (clu's replies: counted, not hard-coded, from the client)
        assert value(m, "bridge_replies_relayed_total", **amqp) >= 9
        hub_side = {"actor": "shutter", "side": "hub"}
        assert value(m, "bridge_commands_received_total", **hub_side) == 1
        assert value(m, "bridge_commands_ended_total", **hub_side, outcome="done") == 1
        assert value(m, "bridge_actor_link_reconnects_total", actor="shutter") == 1
        assert value(m, "bridge_actor_link_state", actor="shutter", state="connected") == 1
        assert value(m, "bridge_actor_link_state", actor="shutter", state="connecting") == 0
        assert value(m, "bridge_amqp_connected", node=bridge.monitoring.facts()["amqp"]["node"]) == 1
        assert value(m, "bridge_amqp_reconnects_total") == 0
        assert value(m, "bridge_hub_clients") in (0, 1)  # the client may still be closing
        assert value(m, "bridge_unsent_bytes") == 0
        assert value(m, "bridge_info", name="metered", version=__import__("bridge").__version__) == 1

        status, health = await http_json(http.port, "/healthz")
        assert (status, health["status"], health["code"], health["name"]) == (200, "ok", 0,
                                                                               "metered")
        (actor,) = health["facts"]["actors"]
        assert actor["link"] == "connected" and actor["reconnects"] == 1
        assert actor["commands"]["amqp"]["received"] == 6
        status, _headers, _body = await http_get(http.port, "/nothing")
        assert status == 404

        # The control actor's status gives the same numbers as keywords.
        reply = await clu_send(client, "metered", "status")
        keywords = {}
        for r in reply.replies:
            for k, v in r.message.items():
                keywords.setdefault(k, []).append(v)
        assert keywords["health"] == [["ok", health["reason"]]]
        commands = {tuple(v[:2]): v[2:] for v in keywords["actorCommands"]}
        assert commands[("shutter", "amqp")][:6] == [6, 3, 1, 1, 1, 0]
        assert commands[("shutter", "hub")][:6] == [1, 1, 0, 0, 0, 0]
        assert keywords["actorLink"] == [["shutter", "connected", 1]]
        assert keywords["amqpLink"][0][0] == "connected"
