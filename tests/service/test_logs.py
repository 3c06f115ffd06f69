"""Log rotation by observing night (MJD), with an injected clock."""

from __future__ import annotations

import logging

from bridge.service.logs import (
    FORMAT,
    NightFileHandler,
    Rotation,
    SecondCachingFormatter,
    night_of,
    night_start,
)

# 2026-12-04T12:00:00Z is MJD 61378.5.
NOON = 1796385600.0


def test_night_numbers():
    assert night_of(NOON, 0.0) == 61378
    assert night_of(NOON, 0.3) == 61378          # MJD fraction 0.5 + 0.3 < 1
    assert night_of(NOON + 0.2 * 86400, 0.3) == 61379   # 16:48 UTC: the next night starts
    start = night_start(61379, 0.3)
    assert night_of(start, 0.3) == 61379 and night_of(start - 0.001, 0.3) == 61378
    assert night_start(61379, 0.3) == NOON + 0.2 * 86400


def test_one_file_per_night_at_the_boundary(tmp_path):
    now = [night_start(61379, 0.3) - 1.0]
    handler = NightFileHandler(tmp_path / "bridge.log", 0.3, clock=lambda: now[0])
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.Logger("night-test")
    logger.addHandler(handler)
    logger.info("last line of night 61378")
    now[0] += 0.999
    logger.info("still night 61378")
    now[0] += 0.002  # past the boundary
    logger.info("first line of night 61379")
    now[0] += 86400
    logger.info("night 61380")
    handler.close()
    assert (tmp_path / "bridge-61378.log").read_text() == (
        "last line of night 61378\nstill night 61378\n")
    assert (tmp_path / "bridge-61379.log").read_text() == "first line of night 61379\n"
    assert (tmp_path / "bridge-61380.log").read_text() == "night 61380\n"
    link = tmp_path / "bridge.log"
    assert link.is_symlink() and link.resolve() == (tmp_path / "bridge-61380.log").resolve()


def test_rotation_builds_either_handler(tmp_path):
    size = Rotation("size", max_bytes=100, backups=2).handler(tmp_path / "a" / "x.log")
    assert isinstance(size, logging.handlers.RotatingFileHandler) and size.maxBytes == 100
    size.close()
    night = Rotation("mjd", mjd_offset=0.5).handler(tmp_path / "b" / "x.log", clock=lambda: NOON)
    assert isinstance(night, NightFileHandler)
    assert night.baseFilename.endswith("x-61379.log")  # 61378.5 + 0.5
    night.close()


def test_regular_file_in_the_way_is_kept(tmp_path):
    (tmp_path / "bridge.log").write_text("old size-rotated log\n")
    handler = NightFileHandler(tmp_path / "bridge.log", 0.3, clock=lambda: NOON)
    handler.close()
    assert (tmp_path / "bridge.log").read_text() == "old size-rotated log\n"


def test_the_second_caching_formatter_writes_what_the_standard_one_writes():
    """Records in the same second, across seconds and back: the same text."""
    ours, standard = SecondCachingFormatter(FORMAT), logging.Formatter(FORMAT)
    base = 1_764_900_000.0
    for created in (base + 0.001, base + 0.5, base + 0.999, base + 1.0, base + 61.25,
                    base + 0.75, base + 86_400.123):
        record = logging.LogRecord("bridge.commands", logging.INFO, __file__, 1,
                                   "ping %s", ("x",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)
    dated = SecondCachingFormatter("%(asctime)s %(message)s", datefmt="%H:%M")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    assert dated.format(record) == logging.Formatter("%(asctime)s %(message)s",
                                                     datefmt="%H:%M").format(record)
