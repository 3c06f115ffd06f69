"""The `bridge` command: one sub-command per module in bridge/cli/."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Sub-command name -> its module in bridge/cli/, which has ``add_parser(subparsers)`` and
#: ``run(args) -> int``.
COMMANDS = {"serve": "serve_cmd", "send": "send_cmd", "tail": "tail_cmd", "status": "status_cmd",
            "check": "check_cmd", "reload": "reload_cmd", "parse": "parse_cmd",
            "format": "format_cmd", "bench": "bench_cmd", "import-tron": "import_tron_cmd"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser: every sub-command, or only ``only`` (its module alone is
    imported, so that a command does not pay for the others' imports at start)."""
    parser = argparse.ArgumentParser(
        prog="bridge",
        description="Tron/opscore legacy actors and clu AMQP actors in one bridge.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if only is None else [only]:
        importlib.import_module(f"{__package__}.{COMMANDS[name]}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
