"""pytest fixtures for the REAL upstream peers: the Tron hub and clu actors (subprocesses).

Everything is function-scoped, listens on 127.0.0.1 only, logs under the test's
``tmp_path`` and is stopped at teardown (SIGTERM, then SIGKILL).

* ``tron_hub`` -> a started :class:`~tests.support.tron_hub.TronHub`;
  ``tron_hub_factory()`` -> an unstarted one (add boot actors, then ``.start()``).
* ``start_clu_shutter(...)`` / ``clu_shutter`` -> :class:`PeerHandle` of a clu LegacyActor.
* ``start_clu_camera(amqp_url, name="camera")`` -> :class:`PeerHandle` of a clu AMQPActor.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.ports import LOOPBACK, free_port
from tests.support.processes import ManagedProcess
from tests.support.tron_hub import PEERS_DIR, TronHub

SHUTTER_SCRIPT = PEERS_DIR / "clu_legacy_shutter.py"
CAMERA_SCRIPT = PEERS_DIR / "clu_amqp_camera.py"


@dataclass
class PeerHandle:
    """A running peer program: where it is and how to stop, crash or restart it."""

    name: str
    process: ManagedProcess
    host: str = LOOPBACK
    port: int | None = None  # TCP peers
    url: str | None = None  # AMQP peers
    tron_port: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.process.running

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def stop(self) -> int | None:
        """SIGTERM (then SIGKILL); return the exit status (0 = clean)."""
        return self.process.stop()

    def kill(self) -> int | None:
        """SIGKILL at once (crash simulation)."""
        return self.process.kill()

    def restart(self) -> str:
        """Stop, then start again with the same arguments (same port); return READY line."""
        return self.process.restart()

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)


@pytest.fixture
def peer_processes() -> Iterator[list[ManagedProcess]]:
    """Processes to stop at teardown (newest first). Append yours to reuse the cleanup."""
    processes: list[ManagedProcess] = []
    yield processes
    for proc in reversed(processes):
        proc.stop()


@pytest.fixture
def peer_log_dir(tmp_path: Path) -> Path:
    """Directory for the peers' log files of this test."""
    path = tmp_path / "peer-logs"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def tron_hub_factory(tmp_path: Path) -> Iterator[Callable[..., TronHub]]:
    """``make(port=None) -> TronHub`` (not started); all are stopped at teardown."""
    hubs: list[TronHub] = []

    def make(port: int | None = None) -> TronHub:
        state_dir = tmp_path / f"tron-{len(hubs) + 1}"
        hub = TronHub(state_dir, port=port or free_port())
        hubs.append(hub)
        return hub

    yield make
    for hub in reversed(hubs):
        hub.stop()


@pytest.fixture
def tron_hub(tron_hub_factory: Callable[..., TronHub]) -> TronHub:
    """The real Tron hub, started, with no actors yet (``add_actor`` + ``start_nubs``)."""
    hub = tron_hub_factory()
    hub.start()
    return hub


@pytest.fixture
def start_clu_shutter(
    peer_processes: list[ManagedProcess], peer_log_dir: Path
) -> Callable[..., PeerHandle]:
    """Start a clu LegacyActor from tests/peers/clu_legacy_shutter.py; wait for READY.

    ``start(name="shutter", port=None, tron_port=None, tron_hub=None, start_nubs=True,
    extra_args=())``: ``port`` defaults to a free one. ``tron_port``: connect to a hub
    (or bridge) there and send ``hub startNubs NAME``. ``tron_hub``: a :class:`TronHub`;
    the actor is registered with it (``add_actor``) and then connects to it.
    """
    counter = itertools.count(1)

    def start(
        name: str = "shutter",
        port: int | None = None,
        tron_port: int | None = None,
        tron_hub: TronHub | None = None,
        start_nubs: bool = True,
        extra_args: Sequence[str] = (),
    ) -> PeerHandle:
        port = port or free_port()
        if tron_hub is not None:
            tron_hub.add_actor(name, LOOPBACK, port)
            tron_port = tron_hub.port
        argv = [sys.executable, str(SHUTTER_SCRIPT), "--name", name, "--port", str(port)]
        if tron_port is not None:
            argv += ["--tron-port", str(tron_port)]
            if not start_nubs:
                argv.append("--no-start-nubs")
        argv += list(extra_args)
        proc = ManagedProcess(
            argv, name=f"clu-{name}-{next(counter)}", log_dir=peer_log_dir, cwd=PEERS_DIR
        )
        peer_processes.append(proc)
        proc.start()
        if tron_hub is not None and start_nubs:
            tron_hub.wait_actor_ready(name)  # READY can precede the hub reading the greeting
        return PeerHandle(name=name, process=proc, port=port, tron_port=tron_port)

    return start


@pytest.fixture
def clu_shutter(start_clu_shutter: Callable[..., PeerHandle]) -> PeerHandle:
    """A clu LegacyActor ``shutter`` on a free loopback port, not connected to any hub."""
    return start_clu_shutter()


@pytest.fixture
def start_clu_camera(
    peer_processes: list[ManagedProcess], peer_log_dir: Path
) -> Callable[..., PeerHandle]:
    """``start(amqp_url, name="camera", extra_args=())``: a clu AMQPActor, READY-waited."""
    counter = itertools.count(1)

    def start(amqp_url: str, name: str = "camera", extra_args: Sequence[str] = ()) -> PeerHandle:
        argv = [sys.executable, str(CAMERA_SCRIPT), "--name", name, "--url", amqp_url]
        argv += list(extra_args)
        proc = ManagedProcess(
            argv, name=f"clu-{name}-{next(counter)}", log_dir=peer_log_dir, cwd=PEERS_DIR
        )
        peer_processes.append(proc)
        proc.start()
        return PeerHandle(name=name, process=proc, url=amqp_url)

    return start
