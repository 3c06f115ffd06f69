#!/usr/bin/env python
"""Run the REAL Tron hub (sdss-tron from PyPI, unmodified) for tests, on loopback only.

Usage: python run_tron_hub.py --state-dir DIR

DIR must contain ``config/hub.json`` and ``config/local.json`` (tests/support/tron_hub.py
writes them); ``DIR/logs`` receives the hub's own logs and ``DIR/nubs`` holds generated
per-actor nub modules. Nothing of tron is patched or copied; this script only:

1. sets ``CONFIG_DIR``, ``TRON_LOG_DIR`` (tron raises KeyError without it) and
   ``OBSERVATORY=LOCAL`` (tron then reads ``local.json``);
2. puts ``DIR/nubs`` and ``tests/peers/tron_nubs`` *first* on ``tron.Nubs.__path__``
   (so a test actor called e.g. ``tcc`` gets our nub, not tron's stock one) and makes
   sure nub modules written while the hub runs are found by ``hub startNubs``;
3. runs tron's own ``runhub.py`` as ``__main__`` with the tron package dir first on
   ``sys.path``, as tron's ``bin/tron start`` does (its Vocab modules need that).

The ``loopclient`` nub prints ``READY tron HOST:PORT pid=N`` once commanders can
connect. SIGTERM runs tron's own shutdown handler (exit status 0).
"""

from __future__ import annotations

import argparse
import importlib.abc
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class FreshNubFinder(importlib.abc.MetaPathFinder):
    """Forget cached directory listings before tron imports a nub module.

    Needed because tests write ``<actor>.py`` into the nub dir after the hub started;
    this finder never finds anything itself.
    """

    def __init__(self, nub_paths: list[str]) -> None:
        self.nub_paths = nub_paths

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        if fullname.startswith("tron.Nubs."):
            for entry in self.nub_paths:
                finder = sys.path_importer_cache.get(entry)
                if finder is not None:
                    finder.invalidate_caches()
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dir", required=True)
    args = ap.parse_args()

    state = os.path.abspath(args.state_dir)
    cfg_dir = os.path.join(state, "config")
    log_dir = os.path.join(state, "logs")
    nub_dir = os.path.join(state, "nubs")
    for needed in ("hub.json", "local.json"):
        if not os.path.exists(os.path.join(cfg_dir, needed)):
            sys.exit(f"run_tron_hub: missing {os.path.join(cfg_dir, needed)}")
    os.makedirs(log_dir, exist_ok=True)
    os.makedirs(nub_dir, exist_ok=True)

    os.environ["CONFIG_DIR"] = cfg_dir
    os.environ["TRON_LOG_DIR"] = log_dir
    os.environ["OBSERVATORY"] = "LOCAL"

    import tron  # noqa: E402
    import tron.Nubs  # noqa: E402  (needs TRON_LOG_DIR first)

    tron_pkg_dir = os.path.dirname(tron.__file__)
    os.environ["TRON_PACKAGE_DIR"] = tron_pkg_dir
    ours = [nub_dir, os.path.join(HERE, "tron_nubs")]
    tron.Nubs.__path__[0:0] = ours
    sys.meta_path.insert(0, FreshNubFinder(ours))
    sys.path.insert(0, tron_pkg_dir)  # as `cd $TRON_PACKAGE_DIR; python runhub.py`
    os.chdir(state)
    sys.argv = [os.path.join(tron_pkg_dir, "runhub.py")]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
