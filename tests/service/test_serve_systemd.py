"""`bridge serve` under a systemd-like supervisor: the sd_notify datagrams in order on a Unix
datagram socket of the test's own (READY, watchdog pings, RELOADING/READY on SIGHUP,
STOPPING on SIGTERM), the HTTP endpoint in the banner, the main log rotated by night."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]


def datagrams(sock: socket.socket, until: str, limit: int = 50) -> list[dict[str, str]]:
    """Datagrams (as dicts) up to and including the first one that has key ``until``."""
    got = []
    for _ in range(limit):
        data = sock.recv(4096).decode()
        message = dict(line.split("=", 1) for line in data.split("\n"))
        got.append(message)
        if until in message:
            return got
    raise AssertionError(f"no {until} in {got}")


def test_serve_notifies_systemd_in_order(amqp_url, tmp_path):
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(30)
    http_port = free_port()
    config = tmp_path / "bridge.toml"
    config.write_text(f'''
name = "unit"
[amqp]
url = "{amqp_url}"
[http]
port = {http_port}
[logs]
file = "{tmp_path / 'logs' / 'bridge.log'}"
rotate = "mjd"
mjd_offset = 0.3
[control]
heartbeat = 0
''')
    proc = ManagedProcess([sys.executable, "-m", "bridge.cli.main", "serve", "--config", config],
                          name="bridge-unit", log_dir=tmp_path, cwd=ROOT, ready_timeout=60,
                          env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"})
    try:
        proc.start()
        first = datagrams(sock, "READY")
        assert first[-1]["READY"] == "1" and "serving" in first[-1]["STATUS"]
        assert all(set(m) == {"WATCHDOG"} for m in first[:-1])  # nothing else before READY
        assert datagrams(sock, "WATCHDOG") == [{"WATCHDOG": "1"}]  # pinged every 0.2 s
        assert f"bridge check --http 127.0.0.1:{http_port}" in proc.log_text()

        proc._popen.send_signal(signal.SIGHUP)  # systemctl reload (ExecReload=kill -HUP)
        reload = [m for m in datagrams(sock, "RELOADING") if "WATCHDOG" not in m]
        assert reload[-1]["RELOADING"] == "1" and int(reload[-1]["MONOTONIC_USEC"]) > 0
        after = [m for m in datagrams(sock, "READY") if "WATCHDOG" not in m]
        assert after == [{"READY": "1", "STATUS": "serving 0 actor(s); reloaded"}]

        proc._popen.send_signal(signal.SIGTERM)
        stopping = [m for m in datagrams(sock, "STOPPING") if "WATCHDOG" not in m]
        assert stopping == [{"STOPPING": "1"}]
        assert proc._popen.wait(30) == 0
    finally:
        proc.stop()
        sock.close()
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs[0] == "bridge-" + logs[0].split("-")[1] and logs[0].endswith(".log")
    assert "bridge.log" in logs and (tmp_path / "logs" / "bridge.log").is_symlink()
    assert "bridge unit started" in (tmp_path / "logs" / "bridge.log").read_text()
