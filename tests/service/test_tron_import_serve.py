"""`bridge import-tron` on tron's real APO and LCO configurations, then `bridge serve` on
the result, with an actor for each of their actor nubs (16 at APO; 11 at LCO, its TCC
given with ``--actor`` at the port of ``lcotcc``) on loopback, on the configured port
where it is free (else on another, given with ``--actor``): the bridge talks to each
actor as tron's nub does and answers hub clients for all of them.

The actors are TCC-like peers (tests/legacy/tcc_peer.py) framed as tron's nubs expect
them, written here from the nub modules' encoder/decoder settings (not from the
importer's output): the TCC (``\\r``, ``<mid> <text>``, mid-first replies), alerts
(``\\r``, ``<cmdr> <mid> <text>``, mid first), the MCP (``<cid> <mid> <text>``), the
others (``<cmdr> <mid> <text>``, cid first).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest

from bridge.cli.main import main
from tests.hub.test_hub_tron_side_by_side import PASSWORDS, Client, log_in
from tests.legacy.tcc_peer import TccPeer
from tests.service.test_tron_import import APO_TCC_INIT, CONFIG
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
#: actor -> (eol, command header, mid first) as tron's nub module speaks to it.
FRAMING = {"tcc": (b"\r", "mid", True), "alerts": (b"\r", "commander", True),
           "mcp": (b"\n", "cid-mid", False)}
SDSS = (b"\n", "commander", False)
APO_ACTORS = {"mcp": 31012, "tcc": 2500, "apo": 9990, "boss": 9998, "hartmann": 9988,
              "apogeecal": 33222, "apogee": 33221, "apogeeql": 18282, "apogeebpr": 33223,
              "apogeefpi": 19981, "alerts": 9995, "jaeger": 19990, "fliswarm": 19996,
              "ecamera": 9987, "hal": 19980, "cherno": 19992}
LCO_ACTORS = {"apogeecal": 33222, "apogee": 33221, "apogeeql": 18282, "apogeefpi": 19981,
              "alerts": 9995, "tcc": 25000, "jaeger": 19990, "fliswarm": 19996,
              "cherno": 19992, "hal": 19980, "hartmann": 9988}
INIT = {"mcp": ("info",), "jaeger": ("ping", "status", "version"),
        "hal": ("ping", "status", "version"), "apogeefpi": ("ping", "version"),
        "cherno": ("ping", "version")}
#: site -> (actor -> configured port, the TCC nub's init commands there)
SITES = {"APO": (APO_ACTORS, APO_TCC_INIT), "LCO": (LCO_ACTORS, ("device status",
                                                                 "show version"))}


def _start_peers(site: str) -> tuple[dict[str, TccPeer], list[str]]:
    """A peer per actor on its configured port if free, else any; the --actor options
    (always for the LCO TCC, whose nub's config entry is missing)."""
    peers: dict[str, TccPeer] = {}
    moved: list[str] = []
    for actor, port in SITES[site][0].items():
        eol, header, mid_first = FRAMING.get(actor, SDSS)
        peer = TccPeer(eol, command_header=header, mid_first=mid_first)
        try:
            peer.start(port)
        except OSError:  # in use on this machine: somewhere else, said on the command line
            peer.start(0)
        if peer.port != port or (site, actor) == ("LCO", "tcc"):
            moved += ["--actor", f"{actor}=127.0.0.1:{peer.port}"]
        peers[actor] = peer
    return peers, moved


def _wait(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _call(client: Client, line: str, mid: int) -> list[str]:
    """Send one plain-port command; its lines (commander ``imp.user``) up to the end."""
    client.send(line, "\n")
    got: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for reply in client.drain(0.05, 1.0):
            fields = reply.split(" ", 4)
            if fields[:2] == ["imp.user", str(mid)]:
                got.append(reply)
                if fields[3] in (":", "f", "F"):
                    return got
    raise AssertionError(f"no end for {line!r}: {got}")


@pytest.mark.parametrize("site", ["APO", "LCO"])
def test_imported_config_served_by_bridge_serve(tmp_path, amqp_url, site):
    peers, moved = _start_peers(site)
    hub_port, auth_port = free_port(), free_port()
    passwords = tmp_path / "tronpass.cfg"
    passwords.write_text("[hub]\n" + "".join(f"{p} = {w}\n" for p, w in PASSWORDS.items()))
    config = tmp_path / f"{site}.toml"
    try:
        assert main(["import-tron", str(CONFIG), "--location", site, "-o", str(config),
                     "--host", "127.0.0.1", *moved, "--hub-port", str(hub_port),
                     "--auth-port", str(auth_port), "--passwords", str(passwords)]) == 1
        serve = ManagedProcess(
            [sys.executable, "-m", "bridge.cli.main", "serve", "--config", config,
             "--ready-file", tmp_path / "ready.json"],
            name="bridge-serve", log_dir=tmp_path, cwd=ROOT, ready_timeout=120,
            env={"BRIDGE_AMQP_URL": amqp_url})
        serve.start()
        try:
            assert json.loads((tmp_path / "ready.json").read_text())["amqp_url"]
            # Every actor got its nub's init commands, framed as the nub frames them.
            for actor, peer in peers.items():
                wanted = list(SITES[site][1] if actor == "tcc" else
                              INIT.get(actor, ("ping", "status")))
                _wait(lambda: peer.texts() == wanted, f"{actor}'s init commands "
                      f"{wanted} (got {peer.texts()})")
            assert peers["tcc"].commands[0] == f"1 {SITES[site][1][0]}"  # `<mid> <text>`
            assert peers["alerts"].commands[0].split(" ")[1:] == ["1", "ping"]
            if site == "APO":
                assert peers["mcp"].commands[0].split(" ")[2:] == ["info"]  # cid mid info
                assert peers["mcp"].commands[0].split(" ")[0] == "11"  # its greeting's cid
            _serve_hub_clients(hub_port, auth_port, site)
        finally:
            serve.stop()
    finally:
        for peer in peers.values():
            peer.stop()


def _serve_hub_clients(hub_port: int, auth_port: int, site: str) -> None:
    plain = Client(hub_port)
    try:
        plain.drain(0.2)
        weather = _call(plain, "imp.user 1 tcc show weather", 1)
        assert [l.split(" ", 4)[3] for l in weather] == ["I", "I", "I", "I", "I", ":"]
        assert weather[2].startswith("imp.user 1 tcc I Pressure=")
        obj = _call(plain, "imp.user 2 tcc show object", 2)
        assert obj[0].startswith("imp.user 2 tcc I ObjNetPos=14.799757,")
        if site == "APO":
            assert _call(plain, "imp.user 3 mcp info", 3)[-1] == 'imp.user 3 mcp : Cmd="info"'
            assert _call(plain, "imp.user 5 boss status", 5)[-1].startswith("imp.user 5 boss :")
        assert _call(plain, "imp.user 4 alerts ping", 4)[-1] == 'imp.user 4 alerts : Cmd="ping"'
        assert _call(plain, "imp.user 8 hal status", 8)[-1] == 'imp.user 8 hal : Cmd="status"'
        # The greeting is cached and returned (tron's grabCID; keys getFor=<actor>).
        keys = _call(plain, "imp.user 6 keys getFor=tcc YourUserNum NumUsers", 6)
        assert "imp.user 6 keys_tcc i YourUserNum=11; NumUsers=1" in keys
        actors = _call(plain, "imp.user 7 hub actors", 7)
        listed = next(l for l in actors if " Actors=" in l)
        assert all(name in listed for name in SITES[site][0]), listed
    finally:
        plain.close()
    # Logins, safe commands and needsAuth from the nubs: GUEST may command no actor.
    guest, replies = log_in(auth_port, "GUEST", "bob")
    try:
        assert any("loggedIn" in line for line in replies), replies
        guest.send("20 tcc show status")  # tcc's safeCmds: (^device )|(status$)
        guest.send("21 tcc show time")    # not safe, and tcc needs auth
        guest.send("22 boss expose" if site == "APO" else "22 tcc device status")
        lines = guest.drain(0.5)
        ends = {l.split(" ")[1]: l for l in lines
                if l.split(" ", 4)[3:4] in (["f"], [":"]) and l.startswith("GUEST.bob")}
        assert ends["20"].startswith("GUEST.bob 20 tcc :"), lines
        assert ends["21"].startswith("GUEST.bob 21 hub f NoPermission="), lines
        assert ends["22"].startswith(  # boss.py: needsAuth=False
            "GUEST.bob 22 boss :" if site == "APO" else "GUEST.bob 22 tcc :"), lines
    finally:
        guest.close()


def test_configured_ports_are_tried_first():
    """The helper really uses the configured ports when it can (else the test above would
    only ever see --actor overrides)."""
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    finally:
        probe.close()
    peer = TccPeer()
    try:
        assert peer.start(port) == port
    finally:
        peer.stop()
