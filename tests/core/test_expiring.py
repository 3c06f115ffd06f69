"""ExpiringSet: members leave a grace period after :meth:`expire`, on one timer."""

from __future__ import annotations

import asyncio

from bridge.core.expiring import ExpiringSet
from tests.faults.helpers import until
from tests.support.aio import aio_test


@aio_test
async def test_a_member_leaves_after_the_grace_and_no_later_than_the_batch() -> None:
    keys: ExpiringSet[str] = ExpiringSet(0.2, batch=0.1)
    loop = asyncio.get_running_loop()
    keys.add("kept")
    started = loop.time()
    keys.add_expiring("a")
    await asyncio.sleep(0.05)
    keys.add_expiring("b")
    assert "a" in keys and "b" in keys and len(keys) == 3
    left: dict[str, float] = {}
    while len(left) < 2 and loop.time() - started < 2:
        for key in ("a", "b"):
            if key not in left and key not in keys:
                left[key] = loop.time() - started
        await asyncio.sleep(0.005)
    # never before the grace (to the float's last digits); the batch's 0.1 s late at most,
    # give or take the loop's lag on a busy machine
    assert 0.2 - 1e-6 <= left["a"] <= 0.2 + 0.1 + 0.5, left
    assert 0.25 - 1e-6 <= left["b"] <= 0.25 + 0.1 + 0.5, left
    assert "kept" in keys and len(keys) == 1  # never told to expire
    assert keys._timer is None and not keys._due


@aio_test
async def test_one_timer_serves_every_pending_expiry() -> None:
    keys: ExpiringSet[int] = ExpiringSet(0.1, batch=0.05)
    for k in range(100):
        keys.add(k)
    keys.expire(0)
    timer = keys._timer
    for k in range(1, 100):
        keys.expire(k)
        assert keys._timer is timer
    await asyncio.sleep(0.09)
    assert len(keys) == 100  # not before the grace
    await until(lambda: len(keys) == 0, "every key expired", timeout=5.0)
    assert keys._timer is None


@aio_test
async def test_discard_removes_at_once_and_a_pending_expiry_of_it_does_no_harm() -> None:
    keys: ExpiringSet[str] = ExpiringSet(0.05, batch=0.01)
    keys.add_expiring("gone")
    keys.discard("gone")
    assert "gone" not in keys
    keys.discard("absent")  # not a member: nothing happens
    await until(lambda: keys._timer is None, "the expiry of 'gone'", timeout=5.0)
    assert len(keys) == 0
