"""LineProtocol framing, fed directly with bytes (no sockets needed)."""

from twisted.internet.testing import StringTransport

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
