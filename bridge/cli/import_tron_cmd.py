"""`bridge import-tron`: a Tron deployment's configuration as a bridge TOML file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..service.config import ConfigError, parse_config
from ..service.tron_import import (
    LOCATIONS,
    TRON_PASSWORDS,
    installed_tron_dir,
    read_deployment,
    render_toml,
    translate,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-tron", help="write a bridge configuration serving a Tron deployment's actors",
        description="Read a Tron configuration directory (<location>.json, hub.json, "
                    "programs.json) and the nub modules of an installed sdss-tron "
                    "(tron/Nubs/*.py, read as source, never run), and write a bridge TOML "
                    "that serves the same actors the same way: host and port, reply header "
                    "order, command header, line terminator, init commands, safe commands, "
                    "needsAuth; the commander and login listeners as the hub port; "
                    "programs and httpRoot. Nubs that cannot be translated are listed with "
                    "the reason (in the file and on stderr); the exit code is then 1.")
    p.add_argument("config_dir", nargs="?", default=None,
                   help="tron's configuration directory (default: $CONFIG_DIR, else the "
                        "installed tron's config/)")
    p.add_argument("--location", type=str.upper, choices=LOCATIONS,
                   default=(os.environ.get("OBSERVATORY") or "").upper() or None,
                   help="which <location>.json to read (default: $OBSERVATORY)")
    p.add_argument("--nubs", type=Path, default=None,
                   help="directory of the nub modules (default: the installed tron's Nubs/)")
    p.add_argument("--programs", type=Path, default=None,
                   help="tron's programs.json (default: the config directory's, else the "
                        "installed tron's, as tron reads it)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="write the TOML here (default: stdout); a programs.json in its "
                        "folder is then named relative to it")
    p.add_argument("--host", default=None,
                   help="use this host for every actor instead of the configured ones "
                        "(e.g. 127.0.0.1 to try the configuration on one machine)")
    p.add_argument("--actor", action="append", default=[], metavar="NAME=HOST:PORT",
                   help="where actor NAME is (instead of its config entry; also for a nub "
                        "whose entry is missing); repeatable")
    p.add_argument("--hub-host", default="127.0.0.1",
                   help="interface of the hub port (default 127.0.0.1; tron listens on all)")
    p.add_argument("--hub-port", type=int, default=None,
                   help="the hub port's plain commander port (default: tron's client nub's)")
    p.add_argument("--auth-port", type=int, default=None,
                   help="the hub port's login port (default: tron's TUI nub's)")
    p.add_argument("--passwords", default=TRON_PASSWORDS,
                   help=f"passwords of the login port (default {TRON_PASSWORDS}, as tron)")
    p.add_argument("--name", default="bridge", help="the bridge's name (default bridge)")
    p.set_defaults(run=run)


def _overrides(items: list[str]) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for item in items:
        name, _, where = item.partition("=")
        host, _, port = where.rpartition(":")
        if not name or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--actor {item!r}: expected NAME=HOST:PORT")
        out[name] = (host, int(port))
    return out


def _source(args: argparse.Namespace, config_dir: Path, nubs_dir: Path) -> str:
    """Where the deployment came from, for the file's first comment (no machine paths
    for what was found by default)."""
    config = args.config_dir or ("$CONFIG_DIR" if os.environ.get("CONFIG_DIR")
                                 else "the installed sdss-tron's tron/config")
    if args.nubs is not None:
        return f"{config} and the nubs in {nubs_dir}"
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = f" {version('sdss-tron')}"
    except PackageNotFoundError:
        release = ""
    return f"{config} and the installed sdss-tron{release}'s tron/Nubs"


def run(args: argparse.Namespace) -> int:
    try:
        tron_dir = installed_tron_dir() if args.config_dir is None or args.nubs is None \
            or args.programs is None else None
        config_dir = Path(args.config_dir or os.environ.get("CONFIG_DIR")
                          or (tron_dir / "config"))  # type: ignore[operator]
        nubs_dir = args.nubs or tron_dir / "Nubs"  # type: ignore[operator]
        if args.location is None:
            raise ValueError("give --location (APO, LCO or LOCAL) or set $OBSERVATORY")
        programs = args.programs
        if programs is None:
            local = config_dir / "programs.json"
            programs = local if local.is_file() else tron_dir / "programs.json"  # type: ignore[operator]
        location_config, hub_config, sources = read_deployment(config_dir, args.location,
                                                               nubs_dir)
        written_programs = None
        if programs.is_file():
            written_programs = str(programs.resolve())
            if args.output is not None and programs.resolve().is_relative_to(
                    args.output.resolve().parent):  # beside the file: keep them together
                written_programs = str(programs.resolve().relative_to(
                    args.output.resolve().parent))
        result = translate(args.location, location_config, hub_config, sources,
                           programs=written_programs, overrides=_overrides(args.actor),
                           host=args.host, source=_source(args, config_dir, nubs_dir))
        text = render_toml(result, name=args.name, hub_host=args.hub_host,
                           passwords=args.passwords, hub_port=args.hub_port,
                           auth_port=args.auth_port)
        base = args.output.resolve().parent if args.output is not None else Path.cwd()
        import tomllib

        parse_config(tomllib.loads(text), base=base)  # what we write must load
    except (OSError, ValueError, ConfigError) as exc:
        print(f"bridge import-tron: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    print(f"bridge import-tron: {len(result.actors)} actor(s), "
          f"{sum(1 for x in (result.plain_listener, result.auth_listener) if x)} listener(s)",
          file=sys.stderr)
    for u in result.untranslated:
        print(f"bridge import-tron: not translated: {u.nub}: {u.reason}", file=sys.stderr)
    return 1 if result.untranslated else 0
