"""Smoke test of ``bridge bench parse``'s end-to-end comparison: both commands run on the
same input and print the same JSON, one line per input line (no speed is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_end_to_end_rows_and_checks() -> None:
    out = subprocess.run([sys.executable, "-m", "bridge.cli.main", "bench", "parse", "--runs", "1",
                          "--passes", "1", "--e2e-lines", "300", "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    e2e = json.loads(out.stdout)["end_to_end"]
    names = [r["name"] for r in e2e["rates"]]
    assert names == ["bridge parse (wall)", "opscore script (wall)",
                     "bridge parse (CPU)", "opscore script (CPU)"]
    assert all(math.isfinite(r["median"]) and r["median"] > 0 for r in e2e["rates"])
    checks = e2e["checks"]
    copies = checks["input lines"] // 143
    assert checks["input lines"] == 143 * copies >= 300
    assert checks["bridge parse: output lines"] == checks["opscore script: output lines"] \
        == checks["input lines"]
    # Only the log's four `25 11 :` lines differ: opscore rejects them (no blank after the code).
    assert checks["lines whose JSON differs"] == 4 * copies
