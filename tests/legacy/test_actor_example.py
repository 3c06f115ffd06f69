"""examples/legacy_shutter.py runs as a program: READY line, serves raw clients, clean stop."""

from __future__ import annotations

from pathlib import Path

from tests.support.ports import LOOPBACK, port_accepts
from tests.support.processes import python_process
from tests.support.tron_hub import LineClient

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "legacy_shutter.py"


def test_example_shutter_serves_and_stops_cleanly(tmp_path: Path) -> None:
    proc = python_process(EXAMPLE, "--port", 0, "--name", "shutter", name="example-shutter",
                          log_dir=tmp_path)
    ready = proc.start()
    try:
        word, name, address = ready.split()
        host, port = address.rsplit(":", 1)
        assert (word, name, host) == ("READY", "shutter", LOOPBACK)
        with LineClient(LOOPBACK, int(port)) as client:
            assert client.read_line() == "1 0 i yourUserID=1; num_users=1"
            client.read_until(lambda ln: ln.startswith("1 0 i version="))
            client.send_raw("APO.john 1 open --delay 0.01")
            lines = client.read_until(lambda ln: ln.startswith("1 1 :"))
            assert lines == ["1 1 > ", '1 1 i text="Opening the shutter"', "1 1 i shutter=moving",
                             "1 1 : shutter=open; shutter_moves=1"]
            client.send_raw("2 status")
            lines = client.read_until(lambda ln: ln.startswith("1 2 :"))
            assert lines[1] == ('1 2 i shutter=open; shutter_moves=1; limit_switches=T,F; '
                                'motor_current=0.125; controller="Bonn shutter v2 (fake)"')
        assert proc.stop() == 0
        assert not port_accepts(int(port))
    finally:
        proc.stop()
