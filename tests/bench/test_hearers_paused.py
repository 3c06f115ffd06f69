"""The relay benchmark pauses clu's hearers (clu's AMQPActor and clu's client, which hear
every reply) during a raw stream, and always lets them go on afterwards: also when the
stream fails, and never when pausing is off. Real processes, their state read from /proc."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.bench.programs import Program
from bridge.bench.relay import CAMERA, HEARERS, Peers


def _state(pid: int) -> str:
    """The process state letter of ``pid`` (``T``: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def _until_state(pid: int, wanted: set[str], timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while (state := _state(pid)) not in wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    return state


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    """Peers whose hearers and raw client are idle real processes."""
    programs = {name: Program(name, [sys.executable, "-c", "import time; time.sleep(60)"],
                              tmp_path) for name in (*HEARERS, "raw-client")}
    for program in programs.values():
        program.start()
    try:
        yield Peers(programs["clu-client"], programs["raw-client"], {}, programs)
    finally:
        for program in programs.values():
            program.stop(timeout=2)


def test_hearers_are_stopped_during_the_block_and_continued_after(peers: Peers) -> None:
    hearers = [peers.programs[name].pid for name in HEARERS]
    assert CAMERA in HEARERS and "clu-client" in HEARERS
    with peers.hearers_paused():
        assert all(_until_state(pid, {"T"}) == "T" for pid in hearers)
        assert _state(peers.raw.pid) != "T"  # the raw stream's own client keeps running
    assert all(_until_state(pid, {"S", "R"}) in ("S", "R") for pid in hearers)


def test_hearers_are_continued_when_the_stream_fails(peers: Peers) -> None:
    hearers = [peers.programs[name].pid for name in HEARERS]
    with pytest.raises(RuntimeError), peers.hearers_paused():
        raise RuntimeError("the stream failed")
    assert all(_until_state(pid, {"S", "R"}) in ("S", "R") for pid in hearers)


def test_the_actor_answering_the_stream_is_never_paused(peers: Peers) -> None:
    client, camera = peers.programs["clu-client"].pid, peers.programs[CAMERA].pid
    with peers.hearers_paused(CAMERA):  # path (a): clu's AMQPActor is the actor
        assert _until_state(client, {"T"}) == "T"
        time.sleep(0.1)
        assert _state(camera) != "T"
    assert _until_state(client, {"S", "R"}) in ("S", "R")


def test_nothing_is_paused_when_pausing_is_off(peers: Peers) -> None:
    peers.pause_hearers = False
    with peers.hearers_paused():
        time.sleep(0.1)
        assert all(_state(peers.programs[name].pid) != "T" for name in HEARERS)
