"""The README's two commands, as a user runs them, and the example configurations."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.service.config import load_config
from tests.support.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "README Quick start has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_second():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[1] == "bash scripts/test.sh"
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in
                                        (ROOT / "examples").rglob("*.toml")))
def test_example_configurations_are_valid(path):
    config = load_config(ROOT / path, env={})
    assert config.actors


def test_readme_first_command_in_a_fresh_directory_serves_the_example_actors(tmp_path):
    """Run the first Quick start command in a copy of the checkout (sharing this
    checkout's virtualenv, so no download) until the example actors answer a command."""
    copy = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if not (ROOT / name).exists():
            continue  # deleted in the working tree
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    os.symlink(ROOT / ".venv", copy / ".venv")
    first = quick_start_commands()[0]
    bridge = ManagedProcess(["bash", "-c", first], name="readme-first", log_dir=tmp_path,
                            cwd=copy, ready_prefix="READY bridge", ready_timeout=240)
    bridge.start()
    try:
        out = subprocess.run([str(copy / ".venv" / "bin" / "bridge"), "send", "--hub",
                              "127.0.0.1:6093", "camera", "expose", "0.1"],
                             capture_output=True, text=True, timeout=60, cwd=copy)
        assert out.returncode == 0, out.stdout + out.stderr + bridge.log_tail()
        assert "shutter=open" in out.stdout and "exposure_state=idle" in out.stdout
    finally:
        assert bridge.stop() == 0, bridge.log_tail()
