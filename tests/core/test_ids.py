import pytest
from hypothesis import given, strategies as st

from bridge.core import IdMap, MidAllocator


def test_allocator_skips_zero_and_ids_in_use_and_wraps():
    alloc = MidAllocator(maximum=3)
    assert [alloc.allocate() for _ in range(4)] == [1, 2, 3, 1]
    assert alloc.allocate(in_use={2, 3}) == 1
    with pytest.raises(RuntimeError):
        alloc.allocate(in_use={1, 2, 3})


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), max_size=200))
def test_idmap_never_collides_and_never_leaks(ops):
    ids = IdMap(maximum=8)
    live: dict[str, int] = {}
    for add, n in ops:
        key = f"uuid-{n}"
        if add and (key in live or len(live) < 8):
            mid = ids.assign(key)
            assert 1 <= mid <= 8
            assert live.setdefault(key, mid) == mid
            assert ids.key(mid) == key
        elif key in live:
            ids.release(live.pop(key))
        assert len(set(live.values())) == len(live) == len(ids)
    for mid in list(live.values()):
        ids.release(mid)
    assert len(ids) == 0
