"""Tron-compatible actor bridge: legacy (opscore line protocol) and AMQP (clu) actors in one process."""

__version__ = "0.1.0"
