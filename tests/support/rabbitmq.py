"""A private, throwaway RabbitMQ broker for tests (Debian's ``rabbitmq-server``).

:class:`RabbitMQBroker` runs one broker node with everything on 127.0.0.1: AMQP on a
free port, the Erlang distribution on another free port, and a private ``epmd`` on a
third, so the host's shared epmd (4369) is neither used nor started. No plugins are
enabled (no management port). State and logs live in a fresh directory that is owned by
user ``rabbitmq`` when running as root (the Debian wrapper ``su``s to that user).

``start()`` waits until the broker answers the AMQP protocol header; ``stop()`` runs
``rabbitmqctl -n NODE stop``, then kills what is left of the processes this object
started and stops the private epmd; ``restart()`` keeps ports, node name and state dir
(so virtual hosts survive a restart, like on a real server).

Isolation between tests: :meth:`RabbitMQBroker.new_vhost` hands out a fresh virtual host
and :meth:`RabbitMQBroker.delete_vhost` removes it with every queue, exchange and
connection in it, so what one test leaves behind cannot reach the next one.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import LOOPBACK, free_port

RABBITMQ_SERVER = os.environ.get("BRIDGE_TEST_RABBITMQ_SERVER", "/usr/sbin/rabbitmq-server")
RABBITMQCTL = os.environ.get("BRIDGE_TEST_RABBITMQCTL", "/usr/sbin/rabbitmqctl")
EPMD = shutil.which("epmd") or "/usr/bin/epmd"
START_TIMEOUT = 60.0
CTL_TIMEOUT = 30.0
VHOST_BATCH = 16

_live: set[RabbitMQBroker] = set()


class BrokerError(RuntimeError):
    """The broker did not start or a ``rabbitmqctl`` call failed."""


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


class RabbitMQBroker:
    """One private broker node. Use :meth:`start`, :meth:`stop`, :meth:`restart`."""

    def __init__(self, base_dir: Path | str | None = None, port: int | None = None) -> None:
        if base_dir is None:
            # Not under pytest's tmp dir: that is mode 0700 root-owned, unreadable by user rabbitmq.
            base_dir = tempfile.mkdtemp(prefix="bridge-rabbitmq-")
        self.base_dir = Path(base_dir)
        self.port = port or free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        while len({self.port, self.dist_port, self.epmd_port}) < 3:
            self.dist_port, self.epmd_port = free_port(), free_port()
        self.node = f"bridgetest{self.port}@localhost"
        self.starts = 0
        self._vhost_pool: list[str] = []
        self._vhost_counter = 0
        self._background: list[subprocess.Popen[bytes]] = []
        self._popen: subprocess.Popen[bytes] | None = None

    # -- addresses and files -------------------------------------------------------------

    @property
    def url(self) -> str:
        """AMQP URL of the broker (user guest, vhost ``/``)."""
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/"

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
        """Start the node (fresh state on the first start) and wait until AMQP answers."""
        if self.running:
            raise BrokerError(f"broker {self.node} is already running")
        if self.starts == 0:
            self._write_config()
        self.starts += 1
        with open(self.stdout_path, "ab") as out:
            out.write(f"=== start #{self.starts}\n".encode())
            self._popen = subprocess.Popen(
                [RABBITMQ_SERVER],
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
        self.wait_background()
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
            [RABBITMQCTL, "-q", "-n", self.node, *args],
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

    def new_vhost(self) -> str:
        """A fresh, empty virtual host where user guest has all permissions.

        Virtual hosts are created in batches (one ``rabbitmqctl eval`` per batch; each
        ``rabbitmqctl`` call starts an Erlang VM, about half a second).
        """
        self._background = [p for p in self._background if p.poll() is None]
        if not self._vhost_pool:
            first = self._vhost_counter + 1
            self._vhost_counter += VHOST_BATCH
            self.ctl("eval", _ADD_VHOSTS_ERLANG % (first, self._vhost_counter))
            self._vhost_pool = [f"t{n}" for n in range(first, self._vhost_counter + 1)]
        return self._vhost_pool.pop(0)

    def vhost_url(self, vhost: str) -> str:
        """AMQP URL for ``vhost`` (names made by :meth:`new_vhost` need no escaping)."""
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/{vhost}"

    def delete_vhost(self, vhost: str, wait: bool = False) -> None:
        """Delete ``vhost`` with everything in it (queues, exchanges, connections).

        Runs ``rabbitmqctl`` in the background unless ``wait``; :meth:`stop` and
        :meth:`wait_background` wait for pending deletions.
        """
        proc = subprocess.Popen(
            [RABBITMQCTL, "-q", "-n", self.node, "delete_vhost", vhost],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._background.append(proc)
        if wait:
            self.wait_background()

    def wait_background(self, timeout: float = CTL_TIMEOUT) -> None:
        """Wait for background ``rabbitmqctl`` calls (kill those that hang)."""
        for proc in self._background:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._background.clear()

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
        """Kill what is left of this node's processes (found by its unique node name in
        their environment: the wrapper, ``su``, the beam and its helpers), then stop the
        private epmd."""
        if self._popen is not None:
            try:
                os.killpg(self._popen.pid, signal.SIGKILL)  # wrapper + su (their own session)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in _pids_with_env(f"RABBITMQ_NODENAME={self.node}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._popen is not None:
            try:
                self._popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
        subprocess.run(
            [EPMD, "-port", str(self.epmd_port), "-kill"],
            env={"ERL_EPMD_ADDRESS": LOOPBACK, "PATH": os.environ.get("PATH", "")},
            capture_output=True,
            timeout=10,
        )


def _pids_with_env(entry: str) -> list[int]:
    """PIDs of live processes whose environment contains exactly ``entry`` (``NAME=value``)."""
    needle = entry.encode() + b"\0"
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


# Runs inside the broker node: creates vhosts t<first>..t<last>, guest gets all permissions.
_ADD_VHOSTS_ERLANG = """
[begin
   V = list_to_binary("t" ++ integer_to_list(N)),
   ok = rabbit_vhost:add(V, <<"tests">>),
   ok = rabbit_auth_backend_internal:set_permissions(
          <<"guest">>, V, <<".*">>, <<".*">>, <<".*">>, <<"tests">>)
 end || N <- lists:seq(%d, %d)].
"""


@atexit.register
def _stop_leftover_brokers() -> None:
    for broker in list(_live):
        try:
            broker.stop()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass
