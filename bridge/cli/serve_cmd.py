"""`bridge serve`: run the bridge from a configuration file until SIGINT/SIGTERM.

Under systemd (``Type=notify``, see examples/systemd/) it reports ``READY=1`` once it
serves, ``RELOADING=1`` then ``READY=1`` around a reload (SIGHUP), ``STOPPING=1`` when it
stops, and pings the watchdog when the unit sets ``WatchdogSec=``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any

from ..service.config import ConfigError, load_config

log = logging.getLogger("bridge.serve")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the bridge (see examples/bridge.toml)",
                       description="Run the bridge described by a TOML configuration file. "
                                   "Without an AMQP URL (config or BRIDGE_AMQP_URL), a private "
                                   "RabbitMQ broker is started on 127.0.0.1 and stopped on exit. "
                                   "SIGINT/SIGTERM stop cleanly; SIGHUP reloads the file.")
    p.add_argument("--config", required=True, help="TOML configuration file")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-file", default=None,
                   help="also log to this file (rotated as [logs] says; default [logs] file)")
    p.add_argument("--loop", default=None, choices=["uvloop", "asyncio"],
                   help="event loop (default: $BRIDGE_LOOP, else uvloop if installed)")
    p.add_argument("--ready-file", default=None,
                   help="write the AMQP URL and ports here once serving (for scripts)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"bridge: configuration error: {exc}", file=sys.stderr)
        return 2
    from ..runtime import loop_kind, run_sync
    from ..service.logs import setup_logging

    try:
        loop = loop_kind(args.loop)
    except ValueError as exc:
        print(f"bridge: {exc}", file=sys.stderr)
        return 2
    log_file = args.log_file or config.logs.file
    setup_logging(args.log_level, log_file, rotation=config.logs.rotation())
    try:
        return int(run_sync(lambda: serve(config, args.ready_file), loop=loop) or 0)
    except ConfigError as exc:
        print(f"bridge: configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        log.error("bridge stopped on an error: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        print(f"bridge: {exc}", file=sys.stderr)
        return 1


async def serve(config: Any, ready_file: str | None = None) -> int:
    """Start the bridge (and a private broker if needed), run until a stop signal."""
    from ..service.bridge import Bridge
    from ..service.broker import RabbitMQBroker
    from ..service.notify import SystemdNotifier

    loop = asyncio.get_running_loop()
    notifier = SystemdNotifier()
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__name__)
    broker = None
    urls = list(config.amqp_urls)
    if not urls:
        broker = RabbitMQBroker()
        log.info("no AMQP URL configured: starting a private RabbitMQ broker on 127.0.0.1:%d",
                 broker.port)
        await loop.run_in_executor(None, broker.start)
        urls = [broker.url]
    url = urls[0]
    bridge = Bridge(config, urls)
    stop = asyncio.Event()
    programs = []
    try:
        await bridge.start()
        programs = await _start_programs(config, url, bridge)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP,
                                lambda: asyncio.ensure_future(_reload(bridge, notifier)))
        if ready_file:  # written before the READY line, so a reader of that line finds it
            with open(ready_file + ".tmp", "w", encoding="utf-8") as f:
                json.dump({"amqp_url": url, "status": bridge.status()}, f)
            os.replace(ready_file + ".tmp", ready_file)
        print(_banner(bridge, url, broker is not None), flush=True)
        notifier.ready(f"serving {len(bridge.actors)} actor(s)")
        notifier.start_watchdog()
        await stop.wait()
        log.info("stopping: failing commands in flight, releasing queues")
        notifier.stopping()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for program in reversed(programs):
            await program.stop()
        await bridge.stop()
        notifier.close()
        if broker is not None:
            await loop.run_in_executor(None, broker.cleanup)
    return 0


async def _start_programs(config: Any, url: str, bridge: Any) -> list[Any]:
    from ..service.processes import ManagedProgram

    env = {"BRIDGE_AMQP_URL": url}
    if bridge.hub_server is not None:
        env["BRIDGE_HUB_PORT"] = str(bridge.hub_server.port)
    cwd = config.source.parent if config.source else None
    programs = []
    for p in config.processes:
        program = ManagedProgram(p.name, p.command, cwd, env)
        programs.append(program)
        await program.start()
        if p.wait_ready:
            await program.wait_ready()
    return programs


async def _reload(bridge: Any, notifier: Any = None) -> None:
    if notifier is not None:
        notifier.reloading()
    try:
        diff = await bridge.reload_from_file()
        log.info("reloaded %s: %s", bridge.config.source, diff)
        status = f"serving {len(bridge.actors)} actor(s); reloaded"
    except Exception as exc:
        log.error("reload failed, configuration unchanged: %s", exc)
        status = f"reload failed, configuration unchanged: {exc}"
    if notifier is not None:
        notifier.ready(status)


def _banner(bridge: Any, url: str, private: bool) -> str:
    status = bridge.status()
    lines = [f"READY bridge {status['name']} amqp={url}" + (" (private broker)" if private else "")]
    if status["hub_port"]:
        lines.append(f"  hub port: nc 127.0.0.1 {status['hub_port']}   then type e.g. "
                     f"'me.you 1 {status['name']} status'")
        lines.append(f"            bridge send --hub 127.0.0.1:{status['hub_port']} "
                     f"{status['name']} status")
    for a in status["actors"]:
        where = f"legacy face on port {a['legacy_port']}" if a["legacy_port"] else a["lives"]
        lines.append(f"  actor {a['name']}: {where}; "
                     f"bridge send --amqp {url} {a['name']} ping")
    lines.append(f"  status: bridge status --amqp {url} --name {status['name']}")
    http = bridge.monitoring.http
    if http is not None:
        lines.append(f"  health: bridge check --http {http.host}:{http.port}   "
                     f"metrics: http://{http.host}:{http.port}/metrics")
    return "\n".join(lines)
