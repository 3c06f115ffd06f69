"""Is the bridge well? One verdict from the facts, for ``bridge check``, ``/healthz`` and
the control actor's ``health`` keyword.

Levels, as a supervisor reads exit codes: ``ok`` (0), ``degraded`` (1: it runs, but an
actor's link is down, the Tron hub is unreachable or one of its AMQP queues could not be
put back in place, so some commands fail), ``down``
(2: the bridge is not connected to its broker, or cannot be reached at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LEVELS = ("ok", "degraded", "down")


@dataclass(frozen=True)
class Health:
    """A verdict: ``level`` (0, 1, 2), its name, and one line saying why."""

    level: int
    reason: str

    @property
    def status(self) -> str:
        return LEVELS[self.level]

    def line(self, name: str) -> str:
        """The one line ``bridge check`` prints."""
        return f"{self.status.upper()}: bridge {name}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.level, "reason": self.reason}


def unreachable(reason: str) -> Health:
    """The verdict when the bridge cannot be asked at all."""
    return Health(2, reason)


def assess(facts: dict[str, Any]) -> Health:
    """The verdict for :func:`bridge.service.monitoring.Monitoring.facts`-shaped facts."""
    amqp = facts.get("amqp") or {}
    if not amqp.get("connected"):
        return Health(2, f"not connected to the AMQP broker ({amqp.get('node') or '?'})")
    problems = [f"queue {name}: {why}"
                for name, why in sorted((amqp.get("queue_problems") or {}).items())]
    tron = facts.get("tron")
    if tron is not None and tron.get("state") != "connected":
        problems.append(f"Tron hub {tron.get('host')}:{tron.get('port')} {tron.get('state')}")
    for actor in facts.get("actors", ()):
        link = actor.get("link")
        if link is not None and link != "connected":
            problems.append(f"actor {actor['name']} link {link}")
    if problems:
        return Health(1, "; ".join(problems))
    actors = facts.get("actors", ())
    parts = [f"{len(actors)} actor(s) linked", f"AMQP {amqp.get('node') or 'connected'}"]
    if tron is not None:
        parts.append("Tron connected")
    return Health(0, ", ".join(parts))
