"""`bridge serve` gives its hub port the [hub] and [actors.X] settings of the perms actor
and httpRoot: http_host/http_root, programs (tron's programs.json), passwords/auth_port,
safe_commands. End to end, as a separate process with its private broker."""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from pathlib import Path

from bridge.hub import password_digest
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
SHUTTER = ROOT / "examples" / "legacy_shutter.py"


class Client:
    """Blocking line client (lines end with \\n or \\r)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def until(self, prefix: str, codes: str = ":f") -> list[str]:
        """Lines up to the first that starts with ``prefix`` and has a code in ``codes``."""
        got: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            *lines, self.buffer = re.split(rb"\r\n|\r|\n", self.buffer)
            for raw in lines:
                line = raw.decode()
                got.append(line)
                parts = line.split(" ", 4)
                if line.startswith(prefix) and len(parts) > 3 and parts[3] in codes:
                    return got
            data = self.sock.recv(65536)
            assert data, f"connection closed; got {got}"
            self.buffer += data
        raise AssertionError(f"no end for {prefix!r}; got {got}")

    def close(self) -> None:
        self.sock.close()


def test_serve_configures_the_hub_ports_perms_and_http_root(tmp_path):
    hub_port, auth_port, shutter_port = free_port(), free_port(), free_port()
    (tmp_path / "tronpass.cfg").write_text("[hub]\nGUEST = welcome\nAPO = s3cret\n")
    config = tmp_path / "bridge.toml"
    config.write_text(f'''
name = "permstest"
[hub]
port = {hub_port}
auth_port = {auth_port}
passwords = "tronpass.cfg"
programs = "{DATA / "programs.json"}"
http_host = "sdss5-hub"
http_root = "/data/"
[actors.shutter]
lives = "local"
port = {shutter_port}
spec = "{SHUTTER}:build_actor"
amqp = false
safe_commands = "(^echo )|(status$)"
''')
    ready = tmp_path / "ready.json"
    proc = ManagedProcess([sys.executable, "-m", "bridge.cli.main", "serve", "--config", config,
                           "--ready-file", ready], name="bridge-serve", log_dir=tmp_path,
                          cwd=ROOT, ready_timeout=120)
    proc.start()
    try:
        plain = Client(hub_port)
        plain.send("a.b 1 keys getFor=hub httpRoot")
        assert "a.b 1 keys_hub i httpRoot=sdss5-hub,/data/" in plain.until("a.b 1 keys")
        plain.send("a.b 2 perms status")
        status = plain.until("a.b 2 perms")
        assert 'a.b 2 perms i programs="APO","GUEST","LCO","OBSERVER","TOY_PROGRAM"' in status
        assert 'a.b 2 perms i authList="TOY_PROGRAM","toy"' in status
        assert any(l.startswith("a.b 2 perms i actors=") and '"shutter"' in l for l in status)

        guest = Client(auth_port)
        guest.send("1 auth knockKnock")
        nonce = re.search(r'nonce="([^"]+)"', guest.until(".unnamed 1 auth")[-1])
        assert nonce
        guest.send(f'1 auth login program="guest" username="bob" '
                   f'password="{password_digest(nonce.group(1), "welcome")}"')
        assert guest.until(".unnamed 1 auth")[-1] == '.unnamed 1 auth : loggedIn; cmdrID="GUEST.bob"'
        for mid, text, allowed in [(2, "echo hi", True), (3, "status", True),
                                   (4, "open", False), (5, "ping", False)]:
            guest.send(f"{mid} shutter {text}")
            last = guest.until(f"GUEST.bob {mid} ")[-1]
            assert last.startswith(f"GUEST.bob {mid} shutter :" if allowed
                                   else f"GUEST.bob {mid} hub f NoPermission="), (text, last)
        for client in (plain, guest):
            client.close()
    finally:
        proc.stop()
    log = proc.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    json.loads(ready.read_text())  # serve wrote its ready file
