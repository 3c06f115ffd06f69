import pytest
from hypothesis import given, strategies as st

from bridge.core import MidAllocator


def test_allocator_skips_zero_and_ids_in_use_and_wraps():
    alloc = MidAllocator(maximum=3)
    assert [alloc.allocate() for _ in range(4)] == [1, 2, 3, 1]
    assert alloc.allocate(in_use={2, 3}) == 1
    with pytest.raises(RuntimeError):
        alloc.allocate(in_use={1, 2, 3})


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), max_size=200))
def test_mids_of_commands_in_flight_never_collide(ops):
    """As a link uses it: allocate against the table of commands in flight, free on end."""
    alloc = MidAllocator(maximum=8)
    live: dict[str, int] = {}
    for add, n in ops:
        key = f"uuid-{n}"
        if add and key not in live and len(live) < 8:
            mid = alloc.allocate(in_use=set(live.values()))
            assert 1 <= mid <= 8 and mid not in live.values()
            live[key] = mid
        elif not add:
            live.pop(key, None)
        assert len(set(live.values())) == len(live)
