"""`bridge check`: is a running bridge well? Exit codes for supervisors and monitoring.

0 healthy, 1 degraded (it runs, but an actor's link is down or its Tron hub is
unreachable), 2 down (not connected to its broker) or unreachable; one line on stdout
saying why (``--json``: one JSON object). Asks the bridge's control actor (``status``,
its ``health`` keyword) over AMQP or a hub port, or its HTTP endpoint's ``/healthz``.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any

from ..service.health import LEVELS, Health, unreachable
from .connect import add_transport_options, run_client, session


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="exit 0 healthy, 1 degraded, 2 down (for supervisors)",
                       description="Check a running bridge: exit 0 if healthy, 1 if degraded "
                                   "(an actor's link down, Tron unreachable), 2 if down or "
                                   "unreachable; one line on stdout says why.")
    add_transport_options(p)
    p.add_argument("--http", metavar="HOST:PORT", default=None,
                   help="ask the bridge's HTTP endpoint (/healthz) instead")
    p.add_argument("--name", default="bridge", help="the bridge's name (config 'name')")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.http and (args.amqp or args.hub):
        raise SystemExit("bridge check: give one of --amqp, --hub, --http")
    if args.http:
        name, health, extra = check_http(args.http, args.timeout)
    else:
        result: list[Any] = []

        async def main() -> int:
            result.append(await check_session(args))
            return 0

        if run_client(main) != 0 or not result:  # could not connect at all
            where = f"hub port {args.hub}" if args.hub else "the AMQP broker"
            result[:] = [(args.name, unreachable(f"cannot connect to {where}"), {})]
        name, health, extra = result[0]
    if args.json:
        print(json.dumps({**health.as_dict(), "name": name, **extra}, sort_keys=True))
    else:
        print(health.line(name))
    return health.level


def check_http(where: str, timeout: float) -> tuple[str, Health, dict[str, Any]]:
    """``GET http://where/healthz``: the bridge's own verdict (any failure: unreachable)."""
    url = f"http://{where}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503: down, with the same JSON body
        try:
            body = json.loads(exc.read())
        except ValueError:
            return "?", unreachable(f"{url} answered HTTP {exc.code}"), {}
    except (OSError, ValueError) as exc:
        return "?", unreachable(f"cannot reach {url}: {exc}"), {}
    health = Health(int(body["code"]), str(body["reason"]))
    return str(body.get("name", "?")), health, {"facts": body.get("facts")}


async def check_session(args: argparse.Namespace) -> tuple[str, Health, dict[str, Any]]:
    """Ask the control actor for ``status`` and read its ``health`` keyword."""
    async with session(args) as s:
        handle = await s.send_command(args.name, "status", time_limit=args.timeout)
    if not handle.succeeded:
        error = handle.error or "no answer"
        return args.name, unreachable(f"its control actor did not answer: {error}"), {}
    keywords = handle.keywords
    health = keywords.get("health")
    if not isinstance(health, list) or len(health) < 2 or health[0] not in LEVELS:
        return args.name, unreachable(f"its status has no health keyword: {keywords}"), {}
    extra = {k: v for k, v in keywords.items() if k not in ("health", "actorStatus")}
    return args.name, Health(LEVELS.index(health[0]), str(health[1])), {"keywords": extra}
