"""The private RabbitMQ broker of the tests: :mod:`bridge.service.broker` plus vhost pools.

The broker itself (loopback-only ports, private epmd, state in a temp dir, clean stop)
is the package's :class:`bridge.service.broker.RabbitMQBroker`. The test subclass adds
isolation between tests: :meth:`RabbitMQBroker.new_vhost` hands out a fresh virtual
host and :meth:`RabbitMQBroker.delete_vhost` removes it with every queue, exchange and
connection in it, so what one test leaves behind cannot reach the next one. Test nodes
are named ``bridgetest<port>@localhost``; ``BRIDGE_TEST_RABBITMQ_SERVER`` and
``BRIDGE_TEST_RABBITMQCTL`` override the programs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bridge.service import broker as _broker
from bridge.service.broker import BrokerError, amqp_handshake_ok, node_pids, rabbitmq_available

RABBITMQ_SERVER = os.environ.get("BRIDGE_TEST_RABBITMQ_SERVER", _broker.RABBITMQ_SERVER)
RABBITMQCTL = os.environ.get("BRIDGE_TEST_RABBITMQCTL", _broker.RABBITMQCTL)
CTL_TIMEOUT = _broker.CTL_TIMEOUT
VHOST_BATCH = 16

__all__ = ["BrokerError", "RabbitMQBroker", "amqp_handshake_ok", "node_pids",
           "rabbitmq_available"]


class RabbitMQBroker(_broker.RabbitMQBroker):
    """A private broker node for tests, with a pool of throwaway virtual hosts."""

    def __init__(self, base_dir: Path | str | None = None, port: int | None = None) -> None:
        super().__init__(base_dir, port, node_prefix="bridgetest", server=RABBITMQ_SERVER,
                         ctl=RABBITMQCTL)
        self._vhost_pool: list[str] = []
        self._vhost_counter = 0
        self._background: list[subprocess.Popen[bytes]] = []

    def stop(self) -> None:
        """Wait for pending vhost deletions, then stop the node."""
        self.wait_background()
        super().stop()

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

    def delete_vhost(self, vhost: str, wait: bool = False) -> None:
        """Delete ``vhost`` with everything in it (queues, exchanges, connections).

        Runs ``rabbitmqctl`` in the background unless ``wait``; :meth:`stop` and
        :meth:`wait_background` wait for pending deletions.
        """
        proc = subprocess.Popen(
            self.ctl_command("delete_vhost", vhost),
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


# Runs inside the broker node: creates vhosts t<first>..t<last>, guest gets all permissions.
_ADD_VHOSTS_ERLANG = """
[begin
   V = list_to_binary("t" ++ integer_to_list(N)),
   ok = rabbit_vhost:add(V, <<"tests">>),
   ok = rabbit_auth_backend_internal:set_permissions(
          <<"guest">>, V, <<".*">>, <<".*">>, <<".*">>, <<"tests">>)
 end || N <- lists:seq(%d, %d)].
"""
