"""Load (issue 7): 100 legacy clients (80 on a legacy face, 20 on the hub port) and 20
AMQP clients send 10,000 commands through one ``bridge serve`` process to a real clu
LegacyActor and a real clu AMQPActor, all at once.

Every command must end with exactly one terminal reply at the right commander and id,
its replies in order; the bridge's RSS must return to its post-warm-up baseline; its
status must show nothing in flight and its log no error. The run is
:func:`bridge.bench.load.run_load` (also ``bridge bench load``); the figures go to the
report (``$BRIDGE_FIGURES``), never into an assertion about speed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bridge.bench.load import (
    MODES,
    LoadSettings,
    block_order,
    format_load,
    format_overhead,
    log_problems,
    run_load,
    run_overhead,
)
from tests.faults.helpers import record_figure


def test_ten_thousand_commands_from_120_clients(amqp_url, tmp_path):
    settings = LoadSettings()
    assert (settings.commands, settings.legacy_clients, settings.amqp_clients) == (10_000, 100, 20)
    with ThreadPoolExecutor(1) as pool:  # its own asyncio loop, away from the reactor's
        result = pool.submit(run_load, settings, amqp_url, None, tmp_path / "logs").result()
    report = format_load(result)
    print(report)
    assert result.problems() == [], report
    total = result.total
    assert total.sent == total.done == 10_000, report
    assert {k: v.clients for k, v in result.tallies.items()} == {
        "legacy face -> camera (AMQP)": 80, "hub port -> lshutter+camera": 20,
        "AMQP -> lshutter (legacy)": 20}, report
    assert result.in_flight_after == 0
    rss = result.rss_kb
    record_figure("load: commands", total.sent, lost=total.lost, duplicates=total.duplicates,
                  seconds=round(result.seconds, 1))
    record_figure("load: bridge RSS", round(rss["peak"] / 1024, 1), unit="MB (peak)",
                  baseline_mb=round(rss["baseline"] / 1024, 1),
                  warmup_peak_mb=round(rss["warmup_hwm"] / 1024, 1),
                  after_mb=round(rss["after"] / 1024, 1))


def test_log_problems_show_whole_error_lines_and_count_the_rest():
    """A failed load run must say what went wrong: the whole error (a CI failure once cut
    it before the reason) and how many more such lines there were."""
    reason = "could not publish to 'reply.x': the AMQP broker did not confirm within 10.0 s"
    lines = [f"2026-12-03 16:00:29,{i:03d} ERROR   bridge.amqp.endpoint: lshutter: could not "
             f"deliver a reply of <IncomingCommand lshutter 'spam 2' id=3657ef63-c499-4396-"
             f"9160-b577cdc00bdc from=load_a{i}.lshutter final=:>: {reason}" for i in range(7)]
    text = "\n".join(["2026-12-03 16:00:28,000 INFO    bridge.serve: ready", *lines,
                      "2026-12-03 16:00:30,000 WARNING bridge.x: only a warning"])
    problems = log_problems(text)
    assert len(problems) == 6
    assert all(p.startswith("bridge log: ") and p.endswith(reason) for p in problems[:5])
    assert problems[5] == "bridge log: 2 more such lines"
    assert log_problems("2026-12-03 INFO fine\nTraceback (most recent call last):") == [
        "bridge log: Traceback (most recent call last):"]
    assert log_problems("all fine\n") == []


def test_metrics_overhead_switches_one_bridge_between_modes_by_reload(amqp_url, tmp_path):
    """``bridge bench load --metrics-overhead``: one bridge process, reloaded into each
    mode before its block. The per-command log lines in the bridge's log prove the modes
    took effect (only the ``metrics+log`` blocks write them; the bridge starts ``off``);
    every command has exactly one terminal reply; each cycle gives one pair per mode.
    Figures only to the report: no assertion about speed."""
    settings = LoadSettings(commands=240, legacy_clients=8, hub_clients=2, amqp_clients=2,
                            warmup=2)
    cycles = 2
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(run_overhead, settings, amqp_url, None, tmp_path / "logs",
                             cycles).result()
    report = format_overhead(result)
    print(report)
    assert result.problems() == [], report
    assert [(r.cycle, r.mode) for r in result.rounds] == [
        (0, "off"), (0, "metrics"), (0, "metrics+log"),
        (1, "metrics+log"), (1, "metrics"), (1, "off")]
    assert all(r.commands == 240 for r in result.rounds)
    answers = [r.reload for r in result.rounds]
    assert "settings: metrics on" in answers[1] and "command log on" in answers[2], answers
    assert "no change" in answers[3] and "command log off" in answers[4], answers
    assert "metrics off" in answers[5], answers
    log = (tmp_path / "logs" / "bridge.log").read_text()
    assert log.count(" done in ") == 240 * cycles, report
    for mode in ("metrics", "metrics+log"):
        assert len(result.paired(mode, "rate").values) == cycles
    assert result.path_cost["added_us"] == result.path_cost["with_us"] - result.path_cost[
        "without_us"]


def test_hub_actors_legacy_keeps_every_command_away_from_the_camera(amqp_url, tmp_path):
    """``--hub-actors legacy`` with only hub-port legacy clients: every command goes to
    ``lshutter`` (the bridge's per-command log lines name the actor of each), none to the
    clu camera, each with exactly one terminal reply."""
    settings = LoadSettings(commands=120, legacy_clients=3, hub_clients=3, amqp_clients=1,
                            warmup=2, hub_actors="legacy")
    assert settings.hub_targets() == ("lshutter",)
    assert LoadSettings().hub_targets() == ("lshutter", "camera")
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(run_load, settings, amqp_url, None, tmp_path / "logs").result()
    report = format_load(result)
    print(report)
    assert result.problems() == [], report
    assert result.total.sent == result.total.done == 120, report
    assert "commanding lshutter)" in report
    log = (tmp_path / "logs" / "bridge.log").read_text()
    ended = [line for line in log.splitlines() if " from " in line and " replies: " in line]
    assert len(ended) == 120 + 4 * 2, report  # the load and the warm-up
    assert not [line for line in ended if " camera " in line], ended[:3]
    with pytest.raises(ValueError, match="hub_actors"):
        LoadSettings(hub_actors="camera").check()


def test_block_order_puts_each_mode_in_each_position_and_repeats_the_mode_at_each_border():
    order = block_order(12)
    assert len(order) == 36 and order[:6] == [
        (0, "off"), (0, "metrics"), (0, "metrics+log"),
        (1, "metrics+log"), (1, "metrics"), (1, "off")]
    for start in (0, 6):  # every six cycles: each mode twice in each position
        cycles = [[m for c, m in order if c == k] for k in range(start, start + 6)]
        assert all(sorted(c) == sorted(MODES) for c in cycles)
        for position in range(3):
            column = [c[position] for c in cycles]
            assert all(column.count(m) == 2 for m in MODES), column
    for k in range(1, 12):  # the A/A pairs of OverheadResult.same_mode
        assert order[3 * k][1] == order[3 * k - 1][1]
