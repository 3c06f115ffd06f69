"""`bridge bench`: benchmarks side by side with the real peers (ratios from one run)."""

from __future__ import annotations

import argparse
import json
import os

from ..bench.parse import DEFAULT_LOG, run_end_to_end, run_parse_benchmark
from ..bench.load import add_arguments as add_load_arguments
from ..bench.load import run_cli as run_load
from ..bench.migrate import add_arguments as add_migrate_arguments
from ..bench.migrate import run_cli as run_migrate
from ..bench.relay import add_arguments as add_relay_arguments
from ..bench.relay import run_cli as run_relay
from ..bench.timing import format_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks against the real upstream peers")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="WHAT")
    parse = bsub.add_parser("parse", help="parse the real TCC log with each parser")
    parse.add_argument("--log", default=str(DEFAULT_LOG), help="log file (date time mid cid code ...)")
    parse.add_argument("--runs", type=int, default=5)
    parse.add_argument("--passes", type=int, default=20, help="passes over the log per run")
    parse.add_argument("--no-upstream", action="store_true", help="only our parser")
    parse.add_argument("--e2e-lines", type=int, default=100_000, metavar="N",
                       help="end to end: `bridge parse` and a script around opscore's parser "
                            "as processes on the log repeated to N lines (0: skip)")
    parse.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parse.set_defaults(run=run_parse)
    relay = bsub.add_parser(
        "relay", help="command round trips and reply streams through the bridge vs. direct",
        description="Start a private broker, real clu peers and the bridge; measure the "
                    "clu AMQP path, both relay paths and the direct legacy path in one run.")
    add_relay_arguments(relay)
    relay.set_defaults(run=run_relay)
    hub = bsub.add_parser(
        "hub", help="commander -> hub -> legacy actor: our hub port vs. the real Tron hub",
        description="Start the real Tron hub (sdss-tron) and our hub port in front of the same "
                    "legacy actor and measure both in one run: round trip (plain socket and "
                    "quick-ACK client), pipelined commands/s, relayed replies/s. Needs a "
                    "checkout (it uses the test suite's Tron launcher).")
    hub.add_argument("--runs", type=int, default=5)
    hub.add_argument("--round-trips", type=int, default=100)
    hub.add_argument("--pipelined", type=int, default=1000)
    hub.add_argument("--spam", type=int, default=1000)
    hub.add_argument("--actor", choices=("fast", "clu"), default="fast",
                     help="fast: a minimal stdlib actor (measures the hubs); clu: a clu LegacyActor")
    hub.add_argument("--no-tron", action="store_true", help="only our hub")
    hub.set_defaults(run=run_hub)
    load = bsub.add_parser(
        "load", help="many legacy and AMQP clients through one bridge: nothing lost, memory",
        description="100 legacy clients (raw sockets on a legacy face and on the hub port) and "
                    "20 AMQP clients send 10,000 commands through one bridge process to a clu "
                    "LegacyActor and a clu AMQPActor; every command must get exactly one "
                    "terminal reply at the right commander, and the bridge's RSS must return "
                    "to its baseline. Exit status 1 if anything is off.")
    add_load_arguments(load)
    load.set_defaults(run=run_load)
    migrate = bsub.add_parser(
        "migrate", help="move an actor legacy -> AMQP (or back) while clients send: counts",
        description="Run the migration walk-through (examples/migration/) under load: a hub-"
                    "port client, a legacy-face client and a clu AMQP client each send at "
                    "--rate commands/s while the shutter moves; print per phase and client "
                    "kind what was sent, answered, failed (why), lost, duplicated, the "
                    "longest wait, and how long each reload took to take effect. Exit "
                    "status 1 if a command was lost, duplicated or failed without cause.")
    add_migrate_arguments(migrate)
    migrate.set_defaults(run=run_migrate)


def run_hub(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if not (root / "tests" / "support" / "tron_hub.py").is_file():
        print("bridge: the hub benchmark needs a checkout (tests/support/tron_hub.py)",
              file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from ..bench.hub import format_results, run_hub_benchmark

    rates = run_hub_benchmark(args.runs, args.round_trips, args.pipelined, args.spam,
                              args.actor, not args.no_tron,
                              lambda msg: print(msg, file=sys.stderr))
    print(format_results(rates))
    return 0


def run_parse(args: argparse.Namespace) -> int:
    rates, rejected = run_parse_benchmark(args.log, args.runs, args.passes, not args.no_upstream)
    e2e = (run_end_to_end(args.log, args.runs, args.e2e_lines, not args.no_upstream)
           if args.e2e_lines > 0 else None)
    load = os.getloadavg()
    if args.json:
        result: dict[str, object] = {"rates": [r.as_dict() for r in rates],
                                     "rejected_lines": rejected, "load": load}
        if e2e is not None:
            result["end_to_end"] = {"rates": [r.as_dict() for r in e2e.rates],
                                    "checks": e2e.checks}
        print(json.dumps(result))
        return 0
    print(format_table(rates, rates[0].name))
    print("ratio = our actor-form median / that parser's median")
    print("lines rejected: " + ", ".join(f"{k}: {v}" for k, v in rejected.items()))
    if e2e is not None:
        print()
        print(format_table(e2e.rates[: len(e2e.rates) // 2], e2e.rates[0].name))
        print(format_table(e2e.rates[len(e2e.rates) // 2:], e2e.rates[len(e2e.rates) // 2].name))
        print("end to end: each command as a process on the log repeated, start-up included; "
              "ratio = bridge parse's median / the script's")
        print("checks: " + ", ".join(f"{k}: {v:,}" for k, v in e2e.checks.items()))
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0
