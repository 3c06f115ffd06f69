"""`bridge serve` / `send` / `status` end to end, as separate processes, with a private broker
started by `serve` itself (no AMQP URL configured)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from bridge.service.broker import node_pids
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BRIDGE = [sys.executable, "-m", "bridge.cli.main"]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BRIDGE, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    return path


@pytest.fixture
def served(tmp_path):
    """A running `bridge serve` with a local legacy shutter and a clu AMQP camera."""
    shutter_port, face_port, hub_port = free_port(), free_port(), free_port()
    config = write_config(tmp_path, f'''
name = "clitest"
[hub]
port = {hub_port}
[actors.shutter]
lives = "local"
port = {shutter_port}
spec = "{EXAMPLES / "legacy_shutter.py"}:build_actor"
[actors.camera]
lives = "amqp"
legacy_port = {face_port}
[processes.camera]
command = ["{{python}}", "{EXAMPLES / "camera_amqp.py"}"]
''')
    ready = tmp_path / "ready.json"
    proc = ManagedProcess([*BRIDGE, "serve", "--config", config, "--ready-file", ready],
                          name="bridge-serve", log_dir=tmp_path, cwd=ROOT, ready_timeout=120)
    proc.start()
    info = json.loads(ready.read_text())
    yield proc, info["amqp_url"], face_port, hub_port
    proc.stop()


def legacy_command(port: int, line: str, mid: int) -> list[str]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(line.encode() + b"\n")
        got, buf = [], b""
        while True:
            data = s.recv(65536)
            assert data, "connection closed"
            buf += data
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                fields = raw.decode().split(" ", 3)
                if fields[1] == str(mid) and fields[0] != "0":
                    got.append(raw.decode())
                    if fields[2] in (":", "f"):
                        return got


def test_serve_send_status_both_ways_then_clean_shutdown(served):
    proc, url, face_port, hub_port = served
    # AMQP side, as an AMQP client would: the clu camera drives the legacy shutter.
    out = cli("send", "--amqp", url, "camera", "expose", "0.1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "camera : exposure_state=idle" in out.stdout and "shutter=open" in out.stdout
    failed = cli("send", "--amqp", url, "shutter", "fail_me")
    assert failed.returncode == 1 and 'error="fail_me always fails"' in failed.stdout
    as_json = cli("send", "--json", "--amqp", url, "shutter", "status")
    replies = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert as_json.returncode == 0 and replies[-1]["code"] == ":"
    assert all(r["sender"] == "shutter" for r in replies)
    # Legacy side: a raw legacy client on the camera's legacy face.
    lines = legacy_command(face_port, "APO.john 7 expose 0.1", 7)
    assert lines[0] == "1 7 > " and lines[-1].startswith("1 7 : exposure_state=idle")
    # Status, as a table and as JSON.
    table = cli("status", "--amqp", url, "--name", "clitest")
    assert table.returncode == 0 and "shutter" in table.stdout and "camera" in table.stdout
    status = json.loads(cli("status", "--amqp", url, "--name", "clitest", "--json").stdout)
    by_name = {a[0]: a for a in status["actors"]}
    assert by_name["shutter"][1:4] == ["local", "legacy", "connected"]
    assert by_name["camera"][1] == "amqp" and status["amqp"] == "connected"

    # The hub port: send, status and tail work there too (no Tron anywhere).
    via_hub = cli("send", "--hub", f"127.0.0.1:{hub_port}", "shutter", "status")
    assert via_hub.returncode == 0 and via_hub.stdout.endswith("shutter :\n"), via_hub.stdout
    hub_status = cli("status", "--hub", f"127.0.0.1:{hub_port}", "--name", "clitest", "--json")
    assert hub_status.returncode == 0, hub_status.stderr
    assert {a[0] for a in json.loads(hub_status.stdout)["actors"]} == {"shutter", "camera"}
    tail = subprocess.Popen([*BRIDGE, "tail", "--hub", f"127.0.0.1:{hub_port}", "--actor",
                             "shutter", "--count", "2", "--seconds", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert tail.stderr is not None and "listening" in tail.stderr.readline()
    assert cli("send", "--hub", f"127.0.0.1:{hub_port}", "shutter", "echo", "hello",
               "tail").returncode == 0  # another commander: the hub fans out to all
    tailed = tail.communicate(timeout=60)[0].splitlines()
    assert tail.returncode == 0 and len(tailed) == 2
    assert tailed[-1] == "shutter : echo=hello,tail"

    # A command in flight when the bridge is told to stop gets its `f`, and serve exits 0.
    slow = subprocess.Popen([*BRIDGE, "send", "--amqp", url, "shutter", "slow", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    assert slow.stdout is not None
    assert slow.stdout.readline().startswith("shutter >")
    port = urlparse(url).port
    proc._signal_group(signal.SIGTERM)  # what systemd or Ctrl-C does
    rest = slow.communicate(timeout=30)[0]
    assert slow.returncode == 1 and "shutter f error=\"The bridge stopped serving actor shutter.\"" in rest
    deadline = time.monotonic() + 30
    while proc.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.returncode == 0, proc.log_tail()
    assert "Traceback" not in proc.log_text()
    assert node_pids(f"bridge{port}@localhost") == []  # the private broker is gone too


@pytest.mark.parametrize("text, key", [
    ('name = "x"\n[actors.a]\nlives = "legacy"\n', "actors.a.port"),
    ('[actors.a]\nlives = "sideways"\nport = 1\n', "actors.a.lives"),
    ('[amqp]\nurl = "http://nope"\n', "amqp.url"),
    ('[actors.a]\nlives = "amqp"\nlegacy_prot = 5\n', "actors.a.legacy_prot"),
    ('name = 5\n', "name"),
    ('[actors.a]\nlives = "legacy"\nport = 70000\n', "actors.a.port"),
    ('[tron]\nport = "x"\n', "tron.port"),
    ('[timeouts]\npublish = 0\n', "timeouts.publish"),
    ('[timeouts]\nreply_hold = "long"\n', "timeouts.reply_hold"),
    ('this is not toml', ""),
])
def test_bad_configuration_is_one_clear_message_and_exit_2(tmp_path, text, key):
    out = cli("serve", "--config", str(write_config(tmp_path, text)))
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("bridge: configuration error:")
    assert key in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_missing_config_file(tmp_path):
    out = cli("serve", "--config", str(tmp_path / "nope.toml"))
    assert out.returncode == 2 and "not found" in out.stderr


def test_send_without_a_broker_is_a_clear_connection_error():
    port = free_port()
    out = cli("send", "--amqp", f"amqp://guest:guest@127.0.0.1:{port}/", "x", "ping", timeout=90)
    assert out.returncode == 2 and out.stderr.startswith("bridge: cannot connect")
