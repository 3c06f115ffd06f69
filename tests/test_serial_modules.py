"""The suite's own layout: the modules kept on one xdist worker exist (a renamed module
would otherwise quietly run alongside the others again)."""

from pathlib import Path

import pytest

from tests.conftest import SERIAL_MODULES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", sorted(SERIAL_MODULES))
def test_serial_module_exists(module: str) -> None:
    assert (ROOT / module).is_file()


def test_serial_modules_carry_the_group_marker(request: pytest.FixtureRequest) -> None:
    session = request.session
    marked = {item.path.relative_to(ROOT).as_posix() for item in session.items
              if item.get_closest_marker("xdist_group") is not None}
    collected = {item.path.relative_to(ROOT).as_posix() for item in session.items}
    assert marked == SERIAL_MODULES & collected
