"""The bridge's numbers in the Prometheus text format, written by prometheus-client.

Each bridge has its own :class:`~prometheus_client.CollectorRegistry` (never the
library's global one: several bridges may run in one process) holding one collector
that turns the facts (:meth:`~bridge.service.monitoring.Monitoring.facts`) and the
command counters (:class:`~bridge.service.metrics.BridgeMetrics`) into metric families
when scraped; nothing is updated on the command path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .metrics import OUTCOMES, BridgeMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LINK_STATES = ("connected", "connecting", "disconnected")


class BridgeCollector(Collector):
    """Yields every metric of one bridge from ``facts()`` and ``metrics`` at scrape time."""

    def __init__(self, facts: Callable[[], dict[str, Any]], metrics: BridgeMetrics | None) -> None:
        self.facts = facts
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        facts = self.facts()
        yield from self._bridge(facts)
        yield from self._links(facts)
        if self.metrics is not None:
            yield from self._commands(self.metrics)

    def _bridge(self, facts: dict[str, Any]) -> Iterator[Metric]:
        info = GaugeMetricFamily("bridge_info", "The bridge's name and version (value 1).",
                                 labels=["name", "version"])
        info.add_metric([facts["name"], facts["version"]], 1)
        yield info
        amqp = facts["amqp"]
        up = GaugeMetricFamily("bridge_amqp_connected",
                               "1 while connected to the AMQP broker (node label: where).",
                               labels=["node"])
        up.add_metric([amqp.get("node") or ""], 1 if amqp["connected"] else 0)
        yield up
        yield CounterMetricFamily("bridge_amqp_reconnects",
                                  "Times the AMQP connection was restored after a loss.",
                                  value=amqp["reconnects"])
        yield GaugeMetricFamily("bridge_amqp_held_publishes",
                                "Replies and commands waiting for a lost AMQP broker.",
                                value=amqp["held_publishes"])
        tron = facts.get("tron")
        if tron is not None:
            t = GaugeMetricFamily("bridge_tron_connected", "1 while connected to the Tron hub.",
                                  labels=["hub"])
            t.add_metric([f"{tron['host']}:{tron['port']}"], 1 if tron["state"] == "connected"
                         else 0)
            yield t
            yield CounterMetricFamily("bridge_tron_reconnects",
                                      "Times the Tron hub connection was restored.",
                                      value=tron["reconnects"])
        hub = facts.get("hub")
        if hub is not None:
            yield GaugeMetricFamily("bridge_hub_clients", "Clients connected to the hub port.",
                                    value=hub["clients"])
        yield GaugeMetricFamily("bridge_unsent_bytes",
                                "Bytes written to slow legacy and hub-port clients that they "
                                "have not read yet.", value=facts["unsent_bytes"])
        yield GaugeMetricFamily("bridge_slow_clients",
                                "Legacy and hub-port clients that are not reading fast enough.",
                                value=facts["slow_clients"])

    def _links(self, facts: dict[str, Any]) -> Iterator[Metric]:
        state = GaugeMetricFamily("bridge_actor_link_state",
                                  "1 for the state the link to a legacy actor is in.",
                                  labels=["actor", "state"])
        reconnects = CounterMetricFamily("bridge_actor_link_reconnects",
                                         "Times the link to a legacy actor came back up.",
                                         labels=["actor"])
        for actor in facts["actors"]:
            if actor["link"] is None:
                continue
            for s in LINK_STATES:
                state.add_metric([actor["name"], s], 1 if actor["link"] == s else 0)
            reconnects.add_metric([actor["name"]], actor["reconnects"])
        yield state
        yield reconnects

    def _commands(self, metrics: BridgeMetrics) -> Iterator[Metric]:
        labels = ["actor", "side"]
        received = CounterMetricFamily("bridge_commands_received",
                                       "Commands received, by actor and the side they came from.",
                                       labels=labels)
        ended = CounterMetricFamily("bridge_commands_ended", "Commands ended, by outcome "
                                    "(done ':', failed 'f', timeout, refused).",
                                    labels=[*labels, "outcome"])
        in_flight = GaugeMetricFamily("bridge_commands_in_flight", "Commands running now.",
                                      labels=labels)
        replies = CounterMetricFamily("bridge_replies_relayed",
                                      "Replies relayed to the commands' commanders.",
                                      labels=labels)
        since = GaugeMetricFamily("bridge_seconds_since_last_reply",
                                  "Seconds since the actor last answered a command of this side.",
                                  labels=labels)
        rtt = HistogramMetricFamily("bridge_command_duration_seconds",
                                    "Round trip of a command: received to its terminal reply.",
                                    labels=labels)
        for (actor, side), s in sorted(metrics.stats.items()):
            key = [actor, side]
            received.add_metric(key, s.received)
            for outcome in OUTCOMES:
                ended.add_metric([*key, outcome], s.ended[outcome])
            in_flight.add_metric(key, s.in_flight)
            replies.add_metric(key, s.replies)
            seconds = s.seconds_since_reply()
            if seconds is not None:
                since.add_metric(key, seconds)
            rtt.add_metric(key, [(_le(b), c) for b, c in s.rtt_buckets()], s.rtt_sum)
        yield from (received, ended, in_flight, replies, since, rtt)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class Exposition:
    """A registry of one bridge and its text rendering."""

    def __init__(self, facts: Callable[[], dict[str, Any]], metrics: BridgeMetrics | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = BridgeCollector(facts, metrics)
        self.registry.register(self.collector)

    @property
    def metrics(self) -> BridgeMetrics | None:
        """The command counters rendered (None: counting is off; a reload may change it)."""
        return self.collector.metrics

    @metrics.setter
    def metrics(self, metrics: BridgeMetrics | None) -> None:
        self.collector.metrics = metrics

    def render(self) -> bytes:
        """The text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)
