"""A TCC-like legacy actor on loopback for tests: the TCC's framing, real TCC replies.

It speaks what tron's TCC nub expects (``ASCIICmdEncoder(EOL='\\r', useCID=False)``,
``ASCIIReplyDecoder(EOL='\\r', stripChars='\\n', CIDfirst=False)``): commands
``<mid> <text>`` ending with ``\\r`` (``\\n`` ignored), replies ``<mid> <cid> <code>
keywords`` ending with :attr:`TccPeer.eol` (``\\r``). Each connection gets its own cid
(11, 12, ...) and is greeted first with ``0 <cid> I YourUserNum=<cid>; NumUsers=<n>``
(what tron's ``grabCID`` reads its cid from; the real TCC's greeting is not in our
sample log, this one follows its header rule). A command whose text is in
``data/tcc_replies.log`` (a real TCC's replies, with their original keywords and
upper-case codes) gets those lines with its own mid and cid; any other command gets
``<mid> <cid> : Cmd="<text>"`` (``show version`` first an ``I Version=...``).

Other nubs' framings are options (for a deployment's other actors in one test):
``command_header`` ``"mid"`` (the TCC's), ``"commander"`` (``<cmdr> <mid> <text>``, the
SDSS actors'), ``"cid-mid"`` (``<cid> <mid> <text>``, the MCP's); ``mid_first`` (reply
header order); ``eol`` (``b"\\n"``: commands split on ``\\n``, a ``\\r`` dropped).

Threaded (blocking tests that drive the real Tron hub can use it as well as asyncio
tests); :attr:`TccPeer.commands` records every command line received.
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "tcc_replies.log"
_LOG_LINE = re.compile(r"\S+ \S+ (\d+) (\d+) ([>IWFE:iwfe]) ?(.*)\Z")
_CMD = re.compile(r'Cmd="([^"]*)"')


def load_script(path: Path = DATA) -> dict[str, list[tuple[str, str]]]:
    """``{command text: [(code, keywords), ...]}`` from the first reply group of each command."""
    groups: dict[str, list[tuple[str, str]]] = {}
    order: list[str] = []
    for line in path.read_text().splitlines():
        m = _LOG_LINE.match(line)
        if m is None or m.group(1) == "0":
            continue
        mid = m.group(1)
        if mid not in groups:
            groups[mid] = []
            order.append(mid)
        groups[mid].append((m.group(3), m.group(4)))
    script: dict[str, list[tuple[str, str]]] = {}
    for mid in order:
        lines = groups[mid]
        name = next((c.group(1) for _, kw in lines for c in [_CMD.search(kw)] if c), None)
        if name is not None and lines[-1][0] in ":fF" and name not in script:
            script[name] = lines
    return script


class TccPeer:
    """The TCC-like actor (see the module docstring). ``port = peer.start()``; ``peer.stop()``."""

    def __init__(self, eol: bytes = b"\r", first_cid: int = 11, *,
                 command_header: str = "mid", mid_first: bool = True) -> None:
        self.eol = eol
        self.command_header = command_header
        self.mid_first = mid_first
        self.script = load_script()
        self.commands: list[str] = []
        self._next_cid = first_cid
        self._clients: dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None
        self.port = 0

    def start(self, port: int = 0) -> int:
        peer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                peer._serve(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for sock in self._clients.values():
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._clients.clear()

    def broadcast(self, code: str, keywords: str) -> None:
        """``0 0 <code> <keywords>`` to every connection (as the TCC's status lines)."""
        with self._lock:
            for sock in list(self._clients.values()):
                self._send(sock, 0, 0, code, keywords)

    def replies_for(self, text: str) -> list[tuple[str, str]]:
        """The (code, keywords) lines the peer answers ``text`` with."""
        if text in self.script:
            return self.script[text]
        lines = [("I", 'Version="2.9.3 (tests/legacy/tcc_peer.py)"')] \
            if text == "show version" else []
        return lines + [(":", f'Cmd="{text}"')]

    # -- internals -------------------------------------------------------------------------
    def _send(self, sock: socket.socket, mid: int, cid: int, code: str, keywords: str) -> None:
        ids = f"{mid} {cid}" if self.mid_first else f"{cid} {mid}"
        line = f"{ids} {code}" + (f" {keywords}" if keywords else "")
        try:
            sock.sendall(line.encode() + self.eol)
        except OSError:
            pass

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            cid = self._next_cid
            self._next_cid += 1
            self._clients[cid] = sock
            users = len(self._clients)
        self._send(sock, 0, cid, "I", f"YourUserNum={cid}; NumUsers={users}")
        buffer = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                if self.eol == b"\r":
                    buffer += data.replace(b"\n", b"")
                    *lines, buffer = buffer.split(b"\r")
                else:
                    buffer += data
                    *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    self._command(sock, cid, raw.decode(errors="replace").rstrip("\r"))
        except OSError:
            return
        finally:
            with self._lock:
                self._clients.pop(cid, None)

    def _command(self, sock: socket.socket, cid: int, line: str) -> None:
        if not line.strip():
            return
        self.commands.append(line)
        words = line.strip().split(" ", 2 if self.command_header != "mid" else 1)
        if self.command_header != "mid":
            words = words[1:]  # the commander, or the cid
        if len(words) < 2 or not words[0].isdigit():
            self._send(sock, 0, cid, "F", f'Text="no mid in {line!r}"')
            return
        for code, keywords in self.replies_for(words[1].strip()):
            self._send(sock, int(words[0]), cid, code, keywords)

    def texts(self) -> list[str]:
        """The command texts received (headers removed), in order."""
        skip = 1 if self.command_header == "mid" else 2
        return [c.strip().split(" ", skip)[skip] for c in self.commands]
