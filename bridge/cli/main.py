"""The `bridge` command: one sub-command per module in bridge/cli/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import (bench_cmd, check_cmd, format_cmd, import_tron_cmd, parse_cmd, reload_cmd,
               send_cmd, serve_cmd, status_cmd, tail_cmd)

#: Sub-command modules; each has ``add_parser(subparsers)`` and ``run(args) -> int``.
COMMANDS = [serve_cmd, send_cmd, tail_cmd, status_cmd, check_cmd, reload_cmd, parse_cmd,
            format_cmd, bench_cmd, import_tron_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge",
        description="Tron/opscore legacy actors and clu AMQP actors in one bridge.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
