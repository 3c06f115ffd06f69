"""A private RabbitMQ broker (Debian's ``rabbitmq-server``) for ``bridge serve`` and tests.

:class:`RabbitMQBroker` runs one broker node with everything on 127.0.0.1: AMQP on a
free port, the Erlang distribution on another free port, and a private ``epmd`` on a
third, so the host's shared epmd (4369) is neither used nor started. No plugins are
enabled (no management port). State and logs live in a fresh directory that is owned by
user ``rabbitmq`` when running as root (the Debian wrapper ``su``s to that user).

``start()`` waits until the broker answers the AMQP protocol header; ``stop()`` runs
``rabbitmqctl -n NODE stop``, then kills what is left of the node's processes (found by
its node name) and stops the private epmd; ``restart()`` keeps ports, node name and
state dir (so virtual hosts survive a restart, like on a real server). Brokers still
running when the interpreter exits are stopped.

Standard library only: importable without pytest or aio-pika.
"""

from __future__ import annotations

import atexit
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
RABBITMQ_SERVER = "/usr/sbin/rabbitmq-server"
RABBITMQCTL = "/usr/sbin/rabbitmqctl"
EPMD = shutil.which("epmd") or "/usr/bin/epmd"
START_TIMEOUT = 60.0
CTL_TIMEOUT = 30.0

_live: set[RabbitMQBroker] = set()


class BrokerError(RuntimeError):
    """The broker is not installed, did not start, or a ``rabbitmqctl`` call failed."""


def rabbitmq_available(server: str = RABBITMQ_SERVER) -> bool:
    """True if the ``rabbitmq-server`` program (by default Debian's) is installed."""
    return os.path.isfile(server) and os.access(server, os.X_OK)


#: Where :func:`free_port` picks from when the kernel's ephemeral range is known: the
#: ports below that range (never handed out by the kernel to an outgoing connection or
#: to a bind to port 0), down to this one.
PORT_FLOOR = 10_000
_given: set[int] = set()  # ports free_port() returned in this process


def _ephemeral_low() -> int | None:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now, for a server started a bit later.

    Picked at random *below* the kernel's ephemeral port range where that range is known
    (Linux), else by binding to port 0. A port from the ephemeral range (what a bind to 0
    gives) can be taken by any outgoing connection before the server binds it -- or while
    a broker node that a test stopped is restarted on the same port -- which made broker
    starts fail with ``eaddrinuse`` now and then. No port is returned twice by one process.
    """
    low = _ephemeral_low()
    if low is not None and low - PORT_FLOOR > 1_000:
        for _ in range(200):
            port = random.randrange(PORT_FLOOR, low)
            if port in _given:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _given.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port = int(sock.getsockname()[1])
    _given.add(port)
    return port


def amqp_handshake_ok(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """True if ``host:port`` answers an AMQP 0-9-1 protocol header with a method frame."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            data = sock.recv(7)
    except OSError:
        return False
    # Frame type 1 (method) on channel 0: the broker's Connection.Start.
    return len(data) >= 3 and data[:3] == b"\x01\x00\x00"


def node_pids(node: str) -> list[int]:
    """PIDs of live processes of broker node ``node`` (the wrapper, ``su``, the Erlang VM
    and its helpers), found by ``RABBITMQ_NODENAME=<node>`` in their environment."""
    needle = f"RABBITMQ_NODENAME={node}".encode() + b"\0"
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if environ.startswith(needle) or b"\0" + needle in environ:
            pids.append(int(proc.name))
    return pids


class RabbitMQBroker:
    """One private broker node. Use :meth:`start`, :meth:`stop`, :meth:`restart`, :meth:`cleanup`.

    ``base_dir``: state directory (default: a new temporary one); ``port``: AMQP port
    (default: a free one); ``node_prefix``: the node is ``<prefix><port>@localhost``;
    ``server``/``ctl``: the ``rabbitmq-server`` and ``rabbitmqctl`` programs.
    """

    #: Stop the epmd at :meth:`stop` (False for nodes that share one, e.g. a cluster's).
    owns_epmd = True

    def __init__(self, base_dir: Path | str | None = None, port: int | None = None, *,
                 node_prefix: str = "bridge", server: str = RABBITMQ_SERVER,
                 ctl: str = RABBITMQCTL) -> None:
        if base_dir is None:
            # Not under a 0700 root-owned temp dir (pytest's): user rabbitmq must reach it.
            base_dir = tempfile.mkdtemp(prefix="bridge-rabbitmq-")
        self.base_dir = Path(base_dir)
        self.server = server
        self.ctl_program = ctl
        self.port = port or free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        while len({self.port, self.dist_port, self.epmd_port}) < 3:
            self.dist_port, self.epmd_port = free_port(), free_port()
        self.node = f"{node_prefix}{self.port}@localhost"
        self.starts = 0
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RabbitMQBroker {self.node} {LOOPBACK}:{self.port} {state}>"

    # -- addresses and files -------------------------------------------------------------

    @property
    def url(self) -> str:
        """AMQP URL of the broker (user guest, vhost ``/``)."""
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/"

    def vhost_url(self, vhost: str) -> str:
        """AMQP URL for virtual host ``vhost`` (a name that needs no URL escaping)."""
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/{vhost}"

    @property
    def stdout_path(self) -> Path:
        return self.base_dir / "server.stdout"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "log" / f"{self.node}.log"

    @property
    def running(self) -> bool:
        """True while the server process started by :meth:`start` has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def env(self) -> dict[str, str]:
        """Environment for ``rabbitmq-server`` and ``rabbitmqctl`` (kept across ``su``)."""
        base = self.base_dir
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS=LOOPBACK,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_PID_FILE=str(base / "mnesia" / "rabbit.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            ERL_EPMD_ADDRESS=LOOPBACK,
            ERL_EPMD_PORT=str(self.epmd_port),
        )
        return env

    def log_tail(self, lines: int = 30) -> str:
        """Last lines of the server's stdout and of its log file, for error messages."""
        parts = []
        for path in (self.stdout_path, self.log_path):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no log files)"

    # -- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the node (fresh state on the first start) and wait until AMQP answers.

        Raises :class:`BrokerError` if rabbitmq-server is missing, exits, or does not
        answer within ``timeout`` seconds (the node is stopped then).
        """
        if self.running:
            raise BrokerError(f"broker {self.node} is already running")
        if not rabbitmq_available(self.server):
            raise BrokerError(f"{self.server} not found: install rabbitmq-server "
                              "or configure the URL of an AMQP broker")
        if self.starts == 0:
            self._write_config()
        self.starts += 1
        with open(self.stdout_path, "ab") as out:
            out.write(f"=== start #{self.starts}\n".encode())
            self._popen = subprocess.Popen(
                [self.server],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        _live.add(self)
        deadline = time.monotonic() + timeout
        while not amqp_handshake_ok(self.port):
            if self._popen.poll() is not None:
                self._kill_leftovers()
                _live.discard(self)
                raise BrokerError(
                    f"rabbitmq-server (node {self.node}) exited with status "
                    f"{self._popen.returncode} before accepting AMQP on port {self.port}\n"
                    + self.log_tail()
                )
            if time.monotonic() >= deadline:
                self.stop()
                raise BrokerError(
                    f"rabbitmq-server (node {self.node}) did not accept AMQP on "
                    f"{LOOPBACK}:{self.port} within {timeout:.0f} s\n" + self.log_tail()
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the node: ``rabbitmqctl stop``, then kill leftovers and the private epmd."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            try:
                self.ctl("stop", timeout=CTL_TIMEOUT)
            except (BrokerError, subprocess.TimeoutExpired):
                pass
            try:
                self._popen.wait(15)
            except subprocess.TimeoutExpired:
                pass
        self._kill_leftovers()
        _live.discard(self)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Stop and start again on the same port, node name and state directory."""
        self.stop()
        self.start(timeout)

    def cleanup(self) -> None:
        """Stop the node and remove its state directory."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- administration ------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """Run ``rabbitmqctl -q -n NODE ARGS...``; return stdout, raise on failure."""
        proc = subprocess.run(
            self.ctl_command(*args),
            env=self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise BrokerError(
                f"rabbitmqctl {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.decode(errors='replace').strip()}"
            )
        return proc.stdout.decode(errors="replace")

    def ctl_command(self, *args: str) -> list[str]:
        """The argument list of ``rabbitmqctl -q -n NODE ARGS...`` (run it with :meth:`env`)."""
        return [self.ctl_program, "-q", "-n", self.node, *args]

    # -- internals -----------------------------------------------------------------------

    def _write_config(self) -> None:
        base = self.base_dir
        if base.exists():
            shutil.rmtree(base)
        (base / "mnesia").mkdir(parents=True)
        (base / "log").mkdir()
        (base / "enabled_plugins").write_text("[].\n")  # no plugins, no management port
        (base / "advanced.config").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {LOOPBACK}:{self.port}\n"
            "loopback_users.guest = true\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("rabbitmq")
            except KeyError:
                return
            for path in [base, *base.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)

    def _kill_leftovers(self) -> None:
        """Kill what is left of this node's processes (the wrapper's session, then every
        process with the node name in its environment), then stop the private epmd."""
        if self._popen is not None:
            try:
                os.killpg(self._popen.pid, signal.SIGKILL)  # wrapper + su (their own session)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in node_pids(self.node):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._popen is not None:
            try:
                self._popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if not self.owns_epmd:
            return
        try:
            subprocess.run(
                [EPMD, "-port", str(self.epmd_port), "-kill"],
                env={"ERL_EPMD_ADDRESS": LOOPBACK, "PATH": os.environ.get("PATH", "")},
                capture_output=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            pass


@atexit.register
def _stop_leftover_brokers() -> None:
    for broker in list(_live):
        try:
            broker.stop()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass
