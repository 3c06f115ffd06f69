"""LineProtocol framing, fed directly with bytes (no sockets needed)."""

from twisted.internet.testing import StringTransport

from bridge import writes
from bridge.legacy.framing import LineProtocol


class Recorder(LineProtocol):
    max_line_length = 16

    def __init__(self):
        super().__init__()
        self.lines, self.too_long, self.bad = [], [], []

    def line_received(self, line):
        if line == "explode":
            raise RuntimeError("handler bug")
        self.lines.append(line)

    def line_too_long(self, size):
        self.too_long.append(size)

    def bad_encoding(self, line):
        self.bad.append(line)


def connected() -> tuple[Recorder, StringTransport]:
    p, t = Recorder(), StringTransport()
    p.makeConnection(t)
    return p, t


def test_lf_and_crlf_and_split_segments():
    p, _ = connected()
    for chunk in (b"a\nb\r\nc", b"d\r", b"\n", b"\n"):
        p.dataReceived(chunk)
    assert p.lines == ["a", "b", "cd", ""]


def test_overlong_line_is_reported_once_and_following_lines_survive():
    p, _ = connected()
    p.dataReceived(b"x" * 40 + b"\nok1\n" + b"y" * 20)
    p.dataReceived(b"y" * 30)
    p.dataReceived(b"zz\nok2\n")
    assert p.lines == ["ok1", "ok2"]
    assert len(p.too_long) == 2


def test_invalid_utf8_and_handler_errors_do_not_drop_the_connection():
    p, t = connected()
    p.dataReceived(b"caf\xe9\nexplode\nnext\n")
    assert p.lines == ["caf\ufffd", "next"] and p.bad == ["caf\ufffd"]
    assert not t.disconnecting


def test_send_line_appends_lf():
    p, t = connected()
    p.send_line("1 2 : text=\"caf\u00e9\"")
    p.send_lines(["a", "b"])
    assert t.value() == '1 2 : text="café"\na\nb\n'.encode()


def test_lines_written_inside_a_held_stretch_leave_in_one_write_when_it_ends():
    p, t = connected()
    written = []
    real = t.write
    t.write = lambda data: (written.append(data), real(data))
    with writes.held():
        p.send_line("1 2 >")
        p.send_lines(["1 2 i a=1", "1 2 i a=2"])
        p.send_line("1 2 :")
        assert t.value() == b""  # nothing before the stretch ends
    assert written == [b"1 2 >\n1 2 i a=1\n1 2 i a=2\n1 2 :\n"]
    p.send_line("3 4 :")  # outside a stretch: at once
    assert written[1:] == [b"3 4 :\n"]


def test_a_held_line_of_a_connection_gone_meanwhile_is_dropped_quietly():
    p, t = connected()
    with writes.held():
        p.send_line("1 2 :")
        p.transport = None  # lost before the stretch ended
    assert t.value() == b""


def test_cr_framing_as_tron_tcc_nub_reads_and_writes():
    """eol = CR (tron's TCC nub: decoder EOL='\\r', stripChars='\\n'; encoder EOL='\\r')."""
    p, t = connected()
    p.eol = b"\r"
    for chunk in (b"19 11 I A=1\r", b"19 11 : B=\n2\r\n20 ", b"11 I C=3\r0 0 I D", b"=4\r"):
        p.dataReceived(chunk)
    assert p.lines == ["19 11 I A=1", "19 11 : B=2", "20 11 I C=3", "0 0 I D=4"]
    p.send_line("7 show users")
    p.send_lines(["8 a", "9 b"])
    assert t.value() == b"7 show users\r8 a\r9 b\r"


def test_cr_framing_discards_an_overlong_line_up_to_its_cr():
    p, _ = connected()
    p.eol = b"\r"
    p.dataReceived(b"x" * 40 + b"\nmore")
    p.dataReceived(b"x\rok\r")
    assert p.lines == ["ok"] and len(p.too_long) == 1


def test_a_long_reads_lines_make_their_writes_in_pieces_of_held_lines():
    """A read of many lines (an actor's burst of replies) is handed on in held stretches
    of HELD_LINES lines: what they make the bridge write leaves in that many pieces, in
    order, not in one write at the end of the read (nor one write per line)."""
    from bridge.legacy.framing import HELD_LINES

    written: list[bytes] = []
    out = writes.HeldBytes(written.append, "test")

    class Relaying(Recorder):
        max_line_length = 1024

        def line_received(self, line):
            super().line_received(line)
            if not out.keep(line.encode() + b";"):
                written.append(line.encode() + b";")

    p, t = Relaying(), StringTransport()
    p.makeConnection(t)
    count = 2 * HELD_LINES + 5
    p.dataReceived(b"".join(b"%d\n" % k for k in range(count)))
    assert p.lines == [str(k) for k in range(count)]
    assert [len(piece.split(b";")) - 1 for piece in written] == [HELD_LINES, HELD_LINES, 5]
    assert b"".join(written) == b"".join(b"%d;" % k for k in range(count))
    p.dataReceived(b"a\nb\n")  # a short read: one stretch, one write
    assert written[-1] == b"a;b;"
