"""Run ``async def`` tests as asyncio tasks on Twisted's asyncio reactor (pytest-twisted)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from bridge.runtime import as_deferred


def aio_test(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Decorate an ``async def`` test: pytest-twisted waits on the returned Deferred.

    Inside the test, asyncio and Twisted share one loop, so both aio-pika calls and
    ``await as_future(deferred)`` work.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return as_deferred(fn(*args, **kwargs))

    return wrapper
