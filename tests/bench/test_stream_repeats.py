"""The relay benchmark's streams: each path several times per run, path after path in
turn; the run's value is the median rate, the CPU per reply is over all streams, and
each raw stream of the bridge's paths is also set over the floor's of the same round."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from bridge.bench import relay
from bridge.bench.relay import RAW_STREAM, RelayResult, Row, _measure_streams, format_relay
from tests.bench.fake_peers import SettleCounter


def test_paths_take_turns_and_a_run_records_the_median_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, bool]] = []
    # seconds per stream of 1,000 replies: e's second stream is slow (a noisy second)
    seconds = {"e": iter([0.1, 0.5, 0.125]), "b-ours": iter([0.2, 0.25, 0.1])}

    def stream(_peers: Any, path: str, n: int, raw: bool = False) -> tuple[int, float]:
        calls.append((path, n, raw))
        return n, next(seconds[path])

    class Cpu:
        def __init__(self, _peers: Any) -> None:
            pass

        def seconds(self) -> float:
            return {"e": 0.0, "b-ours": 0.01}[calls[-1][0]]

    monkeypatch.setattr(relay, "_stream", stream)
    monkeypatch.setattr(relay, "_BridgeCpu", Cpu)
    rows = {(p, RAW_STREAM): Row(p, RAW_STREAM, "replies/s") for p in ("e", "b-ours")}
    peers = SettleCounter()
    _measure_streams(peers, ["e", "b-ours"], RAW_STREAM, 1000, rows, 3)  # type: ignore[arg-type]
    assert [c[0] for c in calls] == ["e", "b-ours"] * 3
    assert all(n == 1000 and raw for _p, n, raw in calls)
    assert peers.settles == 6  # every stream starts on a quiet machine
    assert rows["e", RAW_STREAM].runs == [pytest.approx(8000.0)]  # median of 10k, 2k, 8k
    assert rows["b-ours", RAW_STREAM].runs == [pytest.approx(5000.0)]  # of 5k, 4k, 10k
    assert rows["b-ours", RAW_STREAM].bridge_cpu == [pytest.approx(3 * 0.01 / 3000 * 1e6)]
    # every stream's rate is kept, in the order taken, for the pair ratios
    assert rows["e", RAW_STREAM].samples == pytest.approx([10000.0, 2000.0, 8000.0])
    assert rows["b-ours", RAW_STREAM].samples == pytest.approx([5000.0, 4000.0, 10000.0])


def _result(rows: list[Row]) -> RelayResult:
    return RelayResult(rows, {"runs": 2, "count": 1, "stream": 1000, "streams": 2},
                       {"nproc": 2})


def test_stream_pair_ratios_set_each_stream_over_the_floors_of_the_same_round() -> None:
    e = Row("e", RAW_STREAM, "replies/s", runs=[9000.0, 7000.0],
            samples=[10000.0, 8000.0, 6000.0, 8000.0])
    ours = Row("b-ours", RAW_STREAM, "replies/s", runs=[8500.0, 7500.0],
               samples=[5000.0, 12000.0, 6000.0, 8000.0])
    b = Row("b", RAW_STREAM, "replies/s", runs=[4000.0], samples=[4000.0])  # one stream only
    result = _result([e, ours, b])
    assert result.stream_pair_ratios() == {
        "b-ours/e": pytest.approx([0.5, 1.5, 1.0, 1.0])}  # b: not as many streams as e
    assert e.p99 is None  # a percentile of rates means nothing; round trips only
    text = format_relay(result)
    assert "raw streams pair by pair" in text
    assert "(b-ours)/(e) median 100%, 50%-150% over 4 pairs" in text
    assert result.as_dict()["stream_pair_ratios"] == {"b-ours/e": [0.5, 1.5, 1.0, 1.0]}
    assert "ratio of the medians 100%" in text  # 8,000 of 8,000, beside the pairs
    assert result.goals()["stream, raw AMQP (b-ours) >= 90% of (e)"] is True


def test_the_floor_share_goal_is_the_median_pair_ratio() -> None:
    """Each (b-ours) stream beside (e)'s of the same round: 70 %, 110 %, 95 %. The pairs'
    median says 95 %; the ratio of the two paths' medians (7,000 of 8,000) says 88 %,
    because the slow (e) stream and the fast one fell into different rounds."""
    e = Row("e", RAW_STREAM, "replies/s", runs=[10000.0, 6000.0, 8000.0],
            samples=[10000.0, 6000.0, 8000.0])
    ours = Row("b-ours", RAW_STREAM, "replies/s", runs=[7000.0, 6600.0, 7600.0],
               samples=[7000.0, 6600.0, 7600.0])
    result = _result([e, ours])
    assert ours.median / e.median == pytest.approx(0.875)
    assert statistics.median(result.stream_pair_ratios()["b-ours/e"]) == pytest.approx(0.95)
    assert result.goals()["stream, raw AMQP (b-ours) >= 90% of (e)"] is True
    assert "(b-ours)/(e) median 95%, 70%-110% over 3 pairs, ratio of the medians 88%" \
        in format_relay(result)
    slower = Row("b-ours", RAW_STREAM, "replies/s", runs=[8800.0, 5100.0, 6800.0],
                 samples=[8800.0, 5100.0, 6800.0])  # every pair 85-88 %
    assert _result([e, slower]).goals()["stream, raw AMQP (b-ours) >= 90% of (e)"] is False


def test_without_pairs_the_floor_share_is_the_ratio_of_the_medians() -> None:
    e = Row("e", RAW_STREAM, "replies/s", runs=[8000.0, 8000.0])  # no samples kept
    ours = Row("b-ours", RAW_STREAM, "replies/s", runs=[7000.0, 7000.0])
    assert _result([e, ours]).goals()["stream, raw AMQP (b-ours) >= 90% of (e)"] is False


def test_no_pair_ratios_without_the_floor() -> None:
    ours = Row("b-ours", RAW_STREAM, "replies/s", runs=[8500.0], samples=[8500.0])
    result = _result([ours])
    assert result.stream_pair_ratios() == {}
    assert "pair by pair" not in format_relay(result)


def test_a_warm_up_streams_once_and_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(relay, "_stream", lambda _p, path, n, raw=False: (
        calls.append(path) or (n, 1.0)))
    monkeypatch.setattr(relay, "_BridgeCpu", lambda _p: type("C", (), {
        "seconds": lambda self: None})())
    _measure_streams(SettleCounter(), ["a", "b"], RAW_STREAM, 10, None, 1)  # type: ignore[arg-type]
    assert calls == ["a", "b"]


def test_streams_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="streams"):
        relay.run_relay_benchmark(streams=0)


def test_the_machines_yardsticks_are_printed_median_and_range() -> None:
    machine = {"nproc": 2, "python_loop_ms": [47.0, 80.0, 52.0],
               "wakeup_us": [[30.0, 10.0], [41.0, 12.5], [35.0, 11.0]]}
    text = format_relay(RelayResult([], {"runs": 3, "count": 1, "stream": 1000}, machine))
    assert "a fixed pure-Python loop took 52 (47-80) ms" in text
    assert "a one-byte round trip to another process took 35 (30-41) us, " \
           "11.0 (10.0-12.5) us of CPU on one side" in text
