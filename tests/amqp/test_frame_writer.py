"""The frame writer's ``write_ahead`` (used for acks): straight onto the socket, ahead of
frames still queued for aiormq's writer task or held in a ``writes.held`` stretch, so an
ack (of an ``ha`` queue's delivery) has left before the command it acknowledges is sent
on. The connection's socket writers are replaced by recorders; the ack's effect on the
broker is covered by the ``ha`` tests against it (``amqp/test_endpoint_start.py``,
``cluster/test_ha.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge import writes
from bridge.amqp import writer
from tests.support.aio import aio_test


def recording_writer(monkeypatch: pytest.MonkeyPatch, ahead_works: bool = True
                     ) -> tuple[writer.FrameWriter, asyncio.Queue[Any], list[bytes]]:
    """A FrameWriter whose direct writes are refused (every write is queued) and whose
    writes ahead are recorded (or refused, as on a closing connection)."""
    socket: list[bytes] = []

    def ahead(data: bytes) -> bool:
        if ahead_works:
            socket.append(data)
        return ahead_works

    monkeypatch.setattr(writer, "direct_writer", lambda _queue: None)
    monkeypatch.setattr(writer, "socket_writer", lambda _queue: ahead)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    return writer.FrameWriter(queue), queue, socket


def queued(queue: asyncio.Queue[Any]) -> bytes:
    return b"".join(item.payload for item in queue._queue)  # type: ignore[attr-defined]


@aio_test
async def test_a_write_ahead_leaves_before_frames_still_queued(
        monkeypatch: pytest.MonkeyPatch) -> None:
    w, queue, socket = recording_writer(monkeypatch)
    w.write(b"publish-1")
    w.write_ahead(b"ack")
    w.write(b"publish-2")
    assert socket == [b"ack"]
    assert queued(queue) == b"publish-1publish-2"


@aio_test
async def test_a_write_ahead_is_not_held_by_a_held_stretch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    w, queue, socket = recording_writer(monkeypatch)
    with writes.held():
        w.write(b"publish")
        w.write_ahead(b"ack")
        assert socket == [b"ack"] and queue.empty()
    assert queued(queue) == b"publish"


@aio_test
async def test_where_it_cannot_go_ahead_it_is_written_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    w, queue, socket = recording_writer(monkeypatch, ahead_works=False)
    w.write(b"publish")
    w.write_ahead(b"ack")
    assert socket == [] and queued(queue) == b"publishack"


@aio_test
async def test_a_held_stretchs_bytes_go_straight_onto_the_socket_when_nothing_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a held stretch kept is already one piece: it goes straight onto the socket
    (also a second stretch in the same turn, as a long read's pieces are), unless frames
    written before it still wait in the queue; then it is queued behind them."""
    direct: list[bytes] = []
    monkeypatch.setattr(writer, "direct_writer",
                        lambda _queue: lambda data: direct.append(data) or True)
    monkeypatch.setattr(writer, "socket_writer", lambda _queue: None)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    w = writer.FrameWriter(queue)
    for piece in (b"a", b"b"):
        with writes.held():
            w.write(piece + b"1")
            w.write(piece + b"2")
    assert direct == [b"a1a2", b"b1b2"] and queue.empty()
    w.write(b"c")  # the stretches did not use up the turn's direct write: this goes direct
    w.write(b"d")  # a later write of the same turn waits in the queue
    with writes.held():
        w.write(b"e")
    assert direct[2:] == [b"c"] and queued(queue) == b"de"
