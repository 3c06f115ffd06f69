"""Smoke tests of ``bridge bench relay``: every row is produced, nothing is left running.

Tiny counts (no speed is asserted: the numbers only have to be real measurements).
"""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from bridge.bench.relay import PATHS, STATE_VARIABLE, metrics_of

REPO = Path(__file__).resolve().parents[2]
BENCH = [sys.executable, "-m", "bridge.cli.main", "bench", "relay"]


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_every_row_has_positive_finite_numbers() -> None:
    # Two blocks and two streams per run and path, not the default three: the same
    # interleaving at less cost (test_round_trip_blocks and test_stream_repeats check
    # the splitting and the medians; every measurement waits for the settle).
    out = subprocess.run([*BENCH, "--runs", "2", "--count", "20", "--stream", "50", "--ours",
                          "--blocks", "2", "--streams", "2", "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    rows = {(r["path"], r["metric"]): r for r in result["rows"]}
    expected = {(p, m) for p in PATHS for m in metrics_of(p)}
    assert {("a", "round trip"), ("c", "reply stream"), ("b", "stream, raw AMQP"),
            ("e-max", "stream, raw AMQP"), ("e", "publish only"), ("e-max", "publish only"),
            ("e", "publish only, aio-pika")} <= expected
    assert ("c", "stream, raw AMQP") not in expected  # no AMQP client on a legacy path
    assert set(rows) == expected
    for key, row in rows.items():
        assert len(row["runs"]) == 2, key
        for name in ("median", "min", "max", *(("p99",) if row["unit"] == "ms" else ())):
            assert _positive(row[name]), (key, name, row[name])
        assert all(_positive(v) for v in row["runs"]), key
        cpu = row["bridge_cpu_us"]  # /proc: clock ticks, so 0 is possible on a short run
        assert isinstance(cpu, (int, float)) and math.isfinite(cpu) and cpu >= 0, key
        if row["metric"] == "round trip":
            assert row["unit"] == "ms" and row["samples"] == 2 * 20
            # every program's CPU per command, charged to the path that used it
            split = row["cpu_us_by_process"]
            assert {"camera", "shutter", "bridge", "clu-client", "raw-client", "broker",
                    "bench"} <= set(split), key
            assert all(math.isfinite(v) and v >= 0 for v in split.values()), key
            assert all(len(v) == 2 for v in row["cpu_by_process_runs"].values()), key
            client = "bench" if key[0] in ("c", "d", "d-ours") else "clu-client"
            assert split[client] > 0, key  # the path's client: this process or clu's
        elif row["metric"].startswith("publish only"):
            assert row["unit"] == "messages/s" and row["path"] in ("e", "e-max")
        else:
            assert row["unit"] == "replies/s"
            assert row["samples"] == 2 * 2 and row["p99"] is None  # each stream's rate
    assert result["settings"]["blocks"] == 2  # 20 round trips per run as 10 + 10
    assert result["settings"]["streams"] == 2  # each path's stream twice a run
    assert result["settings"]["hearers_paused"] is True  # during raw streams, by default
    speeds = result["machine"]["python_loop_ms"]  # the machine's speed at each run's start
    assert len(speeds) == 2 and all(_positive(v) for v in speeds)
    wakeups = result["machine"]["wakeup_us"]  # (wall, CPU) of a round trip between processes
    assert len(wakeups) == 2 and all(len(w) == 2 and all(_positive(v) for v in w)
                                     for w in wakeups)
    assert set(result["ratios"]) == {"b/a", "c/a", "b-ours/a"}
    assert all(_positive(v) for v in result["ratios"].values())
    assert set(result["run_ratios"]) == set(result["ratios"])
    for key, values in result["run_ratios"].items():
        num, den = (rows[p, "round trip"] for p in key.split("/"))
        assert values == [x / y for x, y in zip(num["runs"], den["runs"])], key
    pairs = result["stream_pair_ratios"]  # raw streams over (e)'s, stream by stream
    assert set(pairs) == {"b-ours/e", "b/e"}
    assert all(len(v) == 2 * 2 and all(_positive(x) for x in v) for v in pairs.values())
    assert set(result["goals"]) and all(isinstance(v, bool) for v in result["goals"].values())
    assert "round trip c/a <= 1 in every run" in result["goals"]
    # Every measurement waited for a quiet machine (reported, never silently skipped).
    settled = result["machine"]["settled"]
    assert set(settled) == {"seconds", "longest", "timeouts"}
    assert settled["seconds"] > 0 and 0 < settled["longest"] <= settled["seconds"]


def _leftovers(state: Path) -> list[int]:
    """PIDs of processes that carry the benchmark's state directory in their environment."""
    needle = f"{STATE_VARIABLE}={state}".encode() + b"\0"
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if environ.startswith(needle) or b"\0" + needle in environ:
            pids.append(int(proc.name))
    return pids


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    state = tmp_path / "logs"
    bench = subprocess.Popen([*BENCH, "--runs", "50", "--count", "200", "--logs", str(state)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert bench.stderr is not None
        for line in bench.stderr:  # progress lines: wait until it measures
            if line.startswith("run 1/"):
                break
        else:
            raise AssertionError(f"the benchmark stopped early (status {bench.wait()})")
        config = tomllib.loads((state / "bridge.toml").read_text())
        ports = [int(config["amqp"]["url"].rsplit(":", 1)[1].strip("/")),
                 config["actors"]["shutter"]["port"], config["actors"]["camera"]["legacy_port"]]
        assert all(_port_open(p) for p in ports)
        assert len(_leftovers(state)) >= 4  # camera, shutter, bridge, clu client
        bench.send_signal(signal.SIGINT)
        assert bench.wait(90) != 0
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    deadline = time.monotonic() + 10
    while (_leftovers(state) or any(_port_open(p) for p in ports)) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _leftovers(state) == []
    assert not any(_port_open(p) for p in ports)
