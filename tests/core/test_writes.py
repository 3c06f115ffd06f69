"""``bridge.writes``: writes held over a synchronous stretch leave when it ends."""

from __future__ import annotations

import pytest

from bridge import writes


class _Writer:
    """A writer as the bridge's: keeps what it is given while held, one write at the end."""

    def __init__(self, sent: list[bytes], fail: bool = False) -> None:
        self.sent, self.fail, self.kept = sent, fail, None

    def write(self, data: bytes) -> None:
        if writes.holding():
            if self.kept is None:
                self.kept = [data]
                writes.defer(self.flush)
            else:
                self.kept.append(data)
            return
        self.sent.append(data)

    def flush(self) -> None:
        kept, self.kept = self.kept, None
        if self.fail:
            raise OSError("gone")
        self.write(b"".join(kept))


def test_writes_inside_a_stretch_leave_together_when_it_ends() -> None:
    sent: list[bytes] = []
    w = _Writer(sent)
    w.write(b"0")
    with writes.held():
        w.write(b"1")
        w.write(b"2")
        assert sent == [b"0"]
    assert sent == [b"0", b"12"] and not writes.holding()


def test_only_the_outermost_stretch_flushes_and_writers_flush_in_order() -> None:
    sent: list[bytes] = []
    first, second = _Writer(sent), _Writer(sent)
    with writes.held():
        second.write(b"a")
        with writes.held():
            first.write(b"b")
            second.write(b"c")
        assert sent == [] and writes.holding()
        first.write(b"d")
    assert sent == [b"ac", b"bd"]


def test_a_failing_stretch_and_a_failing_writer_still_flush_every_other() -> None:
    sent: list[bytes] = []
    broken, fine = _Writer(sent, fail=True), _Writer(sent)
    with pytest.raises(ValueError):
        with writes.held():
            fine.write(b"x")
            raise ValueError("work failed")
    assert sent == [b"x"]
    with pytest.raises(OSError):
        with writes.held():
            broken.write(b"lost")
            fine.write(b"y")
    assert sent == [b"x", b"y"] and not writes.holding()
    fine.write(b"z")  # nothing is left held after a failure
    assert sent[-1] == b"z"


def test_defer_outside_a_stretch_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        writes.defer(lambda: None)


def test_held_bytes_keep_inside_a_stretch_and_write_once_when_it_ends() -> None:
    sent: list[bytes] = []
    kept = writes.HeldBytes(sent.append, "w")
    assert not kept.keep(b"now")  # outside a stretch: the caller writes it
    with writes.held():
        assert kept.keep(b"a") and kept.keep(b"b")
        with writes.held():
            assert kept.keep(b"c")
        assert sent == []
    assert sent == [b"abc"]


def test_a_held_bytes_write_error_is_logged_and_the_other_writers_still_flush(
        caplog: pytest.LogCaptureFixture) -> None:
    sent: list[bytes] = []

    def broken(_data: bytes) -> None:
        raise OSError("peer gone")

    first, second = writes.HeldBytes(broken, "first writer"), writes.HeldBytes(sent.append, "w")
    with writes.held():
        first.keep(b"x")
        second.keep(b"y")
    assert sent == [b"y"]
    assert any("first writer: could not write 1 held piece(s)" in r.getMessage()
               and r.exc_info for r in caplog.records)
