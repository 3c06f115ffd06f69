"""A private RabbitMQ cluster on loopback for fault tests: N nodes of
:class:`bridge.service.broker.RabbitMQBroker`, joined with ``rabbitmqctl join_cluster``.

Each node has its own AMQP port, distribution port, node name
(``bridgecl<port>@localhost``) and state directory; the nodes share one private epmd
(its port is free and only theirs, so the host's epmd and other tests' brokers are
never involved) and a private Erlang cookie. Faults act on one node only:
:meth:`ClusterNode.stop_gracefully` (``rabbitmqctl stop_app`` then stop, as an
operator would), :meth:`ClusterNode.kill` (``kill -9`` of that node's own Erlang VM,
found by its node name), :meth:`ClusterNode.start_again` (rejoins the cluster: it
keeps its state directory).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bridge.service import broker as _broker
from bridge.service.broker import EPMD, LOOPBACK, BrokerError, free_port, node_pids

START_TIMEOUT = 90.0


class ClusterNode(_broker.RabbitMQBroker):
    """One node of a :class:`RabbitMQCluster` (shared epmd and cookie)."""

    owns_epmd = False  # the cluster stops the shared epmd

    def __init__(self, base_dir: Path, epmd_port: int, cookie: str) -> None:
        super().__init__(base_dir, node_prefix="bridgecl")
        self.epmd_port = epmd_port
        self.cookie = cookie

    def env(self) -> dict[str, str]:
        env = super().env()
        cookie = f"-setcookie {self.cookie}"
        env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] += f" {cookie}"
        env["RABBITMQ_CTL_ERL_ARGS"] += f" {cookie}"
        env["RABBITMQ_ERLANG_COOKIE"] = self.cookie  # read by the CLI tools (deprecated name)
        return env

    def ctl_command(self, *args: str) -> list[str]:
        return [self.ctl_program, "-q", "-n", self.node, "--erlang-cookie", self.cookie, *args]

    def beam_pids(self) -> list[int]:
        """PIDs of this node's Erlang VM (beam.smp) only."""
        pids = []
        for pid in node_pids(self.node):
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if "beam" in os.path.basename(exe):
                pids.append(pid)
        return pids

    def kill(self) -> None:
        """``kill -9`` this node's Erlang VM (a crash: no goodbye to clients or peers)."""
        pids = self.beam_pids()
        if not pids:
            raise BrokerError(f"no beam process found for node {self.node}")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.stop()  # reap the wrapper, kill leftovers (not the shared epmd)

    def stop_gracefully(self) -> None:
        """``rabbitmqctl stop_app`` (clients are closed, queues move away), then stop."""
        try:
            self.ctl("stop_app", timeout=60)
        except (BrokerError, subprocess.TimeoutExpired):
            pass
        self.stop()

    def start_again(self, timeout: float = START_TIMEOUT) -> None:
        """Start this node again with its state: it rejoins the cluster by itself."""
        self.start(timeout)


class RabbitMQCluster:
    """``size`` nodes joined into one cluster. ``start()`` / ``stop()``; ``urls(vhost)``."""

    def __init__(self, size: int = 3, base_dir: Path | str | None = None) -> None:
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="bridge-cluster-"))
        self.base_dir.chmod(0o755)  # user rabbitmq reaches the nodes' directories in it
        self.epmd_port = free_port()
        self.cookie = "BRIDGETEST" + secrets.token_hex(10).upper()
        self.nodes = [ClusterNode(self.base_dir / f"n{i + 1}", self.epmd_port, self.cookie)
                      for i in range(size)]

    def urls(self, vhost: str = "") -> list[str]:
        """AMQP URLs of every node, in order (user guest)."""
        return [f"amqp://guest:guest@{LOOPBACK}:{n.port}/{vhost}" for n in self.nodes]

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start every node (in parallel) and join nodes 2.. to node 1."""
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                for future in [pool.submit(n.start, timeout) for n in self.nodes]:
                    future.result()
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.node, timeout=60)
                node.ctl("start_app", timeout=60)
            self.wait_running(len(self.nodes), timeout)
        except BaseException:
            self.stop()
            raise

    def running_nodes(self) -> list[str]:
        """Node names the cluster reports as running (asked of any live node)."""
        for node in self.nodes:
            if not node.running:
                continue
            try:
                out = node.ctl("eval", "rabbit_nodes:all_running().")
            except (BrokerError, subprocess.TimeoutExpired):
                continue
            return [n.strip(" '") for n in out.strip().strip("[]\n").split(",") if n.strip()]
        return []

    def wait_running(self, count: int, timeout: float = 60.0) -> None:
        """Wait until ``count`` nodes run in the cluster."""
        deadline = time.monotonic() + timeout
        while len(self.running_nodes()) < count:
            if time.monotonic() > deadline:
                raise BrokerError(f"cluster: fewer than {count} nodes running after {timeout} s: "
                                  f"{self.running_nodes()}")
            time.sleep(0.5)

    def add_vhost(self, vhost: str) -> None:
        """Create ``vhost`` (cluster-wide) with all permissions for guest."""
        node = next(n for n in self.nodes if n.running)
        node.ctl("add_vhost", vhost)
        node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def stop(self) -> None:
        """Stop every node, then the shared epmd."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.stop(), self.nodes))
        try:
            subprocess.run([EPMD, "-port", str(self.epmd_port), "-kill"],
                           env={"ERL_EPMD_ADDRESS": LOOPBACK, "PATH": os.environ.get("PATH", "")},
                           capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def cleanup(self) -> None:
        import shutil

        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
