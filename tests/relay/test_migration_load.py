"""Issue 12: the migration walk-through under load, with counts, phase by phase.

`bridge serve` runs as a separate process and is reloaded by SIGHUP (or `bridge reload`);
the shutters are real clu actors (a LegacyActor, an AMQPActor started, stopped and
started again); a hub-port client, a legacy-face client and a real clu AMQPClient send
continuously (20 commands/s each, every fifth a 0.4 s `slow`), so commands are in flight
at every switch. The run is :func:`bridge.bench.migrate.run_migrate` (also `bridge bench
migrate`), with short phases; its figures go to the report, never into an assertion.

Checked for every phase and client kind: nothing lost, nothing answered twice, and the
only failures are the allowed ones (a command in flight on a shutter that is being
stopped; for AMQP clients, clu's own "Failed routing" while no process consumes
`shutter_commands`); and who served each phase: the legacy shutter, the AMQP one, both
around a switch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bridge.bench.migrate import MigrateSettings, format_migrate, run_migrate
from tests.faults.helpers import record_figure

PHASE_SECONDS = 2.0


def _run(amqp_url, tmp_path, **settings):
    s = MigrateSettings(phase_seconds=PHASE_SECONDS, grace=20.0, **settings)
    with ThreadPoolExecutor(1) as pool:  # its own asyncio loop, away from the reactor's
        result = pool.submit(run_migrate, s, amqp_url, None, tmp_path / "logs").result()
    report = format_migrate(result)
    print(report)
    return result, report


def _check_common(result, report):
    assert result.problems() == [], report
    for phase in result.phases:
        for kind, t in phase.tallies.items():
            assert t.sent >= 10, (phase.name, kind, report)  # everyone sent in every phase
            assert t.lost == t.duplicated == t.failed == 0, report
        if phase.action and phase.action.startswith("reload"):
            assert phase.reload_effect is not None, (phase.name, report)


def _served(phase, kind):
    return set(phase.tallies[kind].by)


def _allowed(phase, kind):
    return sum(phase.tallies[kind].allowed.values())


def _routing_failures(phase):
    return sum(n for reason, n in phase.tallies["amqp"].allowed.items()
               if reason.startswith("Failed routing"))


@pytest.mark.parametrize("mode", ["legacy", "hub"])
def test_forward_walkthrough_under_load(amqp_url, tmp_path, mode):
    """legacy -> prefer-AMQP -> AMQP started -> stopped -> started again -> legacy retired
    -> lives = "amqp"; with the shutter reached directly over TCP, or through a real Tron."""
    result, report = _run(amqp_url, tmp_path, mode=mode)
    _check_common(result, report)
    p = result.phases
    assert [ph.action for ph in p] == [None, "reload:prefer", "start:amqp", "stop:amqp",
                                       "start:amqp", "stop:legacy", "reload:amqp"]
    # 1: the legacy shutter serves everyone, AMQP clients through the bridge's AMQP face.
    for kind in ("hub", "face", "amqp"):
        assert _served(p[0], kind) == {"legacy"} and _allowed(p[0], kind) == 0, report
    # 2: the bridge released shutter's AMQP name: legacy clients go on unharmed; AMQP
    # clients get clu's "Failed routing" (nobody consumes shutter_commands now).
    for kind in ("hub", "face"):
        assert _served(p[1], kind) == {"legacy"} and _allowed(p[1], kind) == 0, report
    assert _routing_failures(p[1]) > 0, report
    # 3 and 5: the AMQP shutter starts, and the bridge sends legacy clients to it by itself.
    for phase in (p[2], p[4]):
        for kind in ("hub", "face", "amqp"):
            assert "amqp" in _served(phase, kind), (phase.name, kind, report)
        assert set(phase.serving_after) == {"hub", "face", "amqp"}, report
    # 4: the AMQP shutter stopped (it may answer a few more while it stops): legacy
    # clients are back on the legacy shutter.
    for kind in ("hub", "face"):
        assert "legacy" in _served(p[3], kind), report
    # 6 and 7: only the AMQP shutter is left; after the reload it is served directly.
    for phase in (p[5], p[6]):
        for kind in ("hub", "face", "amqp"):
            assert _served(phase, kind) == {"amqp"}, (phase.name, kind, report)
            assert _allowed(phase, kind) == 0, (phase.name, kind, report)
    record_figure(f"migrate forward ({mode}): reload in effect", max(
        ph.reload_effect for ph in p if ph.reload_effect is not None), unit="s (slowest)")


def test_reverse_walkthrough_under_load_reloaded_with_the_cli(amqp_url, tmp_path):
    """An AMQP shutter handed back to its legacy implementation: lives = "amqp" -> legacy
    preferring AMQP -> AMQP shutter stopped -> legacy served on AMQP by the bridge; the
    reloads are `bridge reload` commands (through the hub port)."""
    result, report = _run(amqp_url, tmp_path, direction="reverse", reload_with="cli")
    _check_common(result, report)
    p = result.phases
    assert [ph.action for ph in p] == [None, "reload:prefer", "stop:amqp", "reload:legacy"]
    for kind in ("hub", "face", "amqp"):
        assert _served(p[0], kind) == {"amqp"} and _allowed(p[0], kind) == 0, report
        # The AMQP shutter is still preferred (what it took unstarted with it when it
        # stopped, at the start of phase 3, went to the legacy shutter).
        assert "amqp" in _served(p[1], kind), report
    for kind in ("hub", "face"):
        assert "legacy" in _served(p[2], kind), report
        assert _served(p[3], kind) == {"legacy"} and _allowed(p[3], kind) == 0, report
    assert _routing_failures(p[2]) > 0, report  # nobody consumes shutter_commands
    # 4: the bridge serves the legacy shutter on AMQP again.
    assert _served(p[3], "amqp") == {"legacy"}, report
