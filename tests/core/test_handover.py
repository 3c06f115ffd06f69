"""The face hand-over state machine (bridge/core/handover.py): transitions as data."""

from __future__ import annotations

import pytest

from bridge.core.handover import (
    TRANSITIONS,
    Handover,
    HandoverError,
    HandoverEvent,
    HandoverState,
    drain_limit_error,
)

E, S = HandoverEvent, HandoverState


def test_the_normal_hand_over_and_its_history():
    now = [0.0]
    seen = []
    h = Handover("shutter", clock=lambda: now[0], listener=lambda *t: seen.append(t))
    assert h.accepting and not h.ended
    now[0] = 1.0
    h.handle(E.RELEASE)
    assert not h.accepting  # intake stops with the first event
    now[0] = 1.25
    h.handle(E.RELEASED)
    now[0] = 3.0
    assert h.handle(E.IDLE) is S.STOPPED
    assert h.ended and h.ended_by is E.IDLE
    assert h.time_in(S.RELEASING) == 0.25 and h.time_in(S.DRAINING) == 1.75
    assert seen == [(S.SERVING, E.RELEASE, S.RELEASING), (S.RELEASING, E.RELEASED, S.DRAINING),
                    (S.DRAINING, E.IDLE, S.STOPPED)]


@pytest.mark.parametrize("state", list(HandoverState))
@pytest.mark.parametrize("event", list(HandoverEvent))
def test_every_pair_not_in_the_table_is_refused(state, event):
    h = Handover("x")
    h.state = state
    if (state, event) in TRANSITIONS:
        assert h.can(event)
        h.handle(event)
        assert h.state is TRANSITIONS[(state, event)]
    else:
        assert not h.can(event)
        with pytest.raises(HandoverError, match=event.value):
            h.handle(event)
        assert h.state is state


def test_stop_ends_every_unfinished_state_and_only_serving_accepts():
    for state in HandoverState:
        assert (state, E.STOP) in TRANSITIONS or state is S.STOPPED
    accepting = set()
    for state in HandoverState:
        h = Handover("x")
        h.state = state
        if h.accepting:
            accepting.add(state)
    assert accepting == {S.SERVING}


def test_the_drain_limit_error_says_what_happened():
    text = drain_limit_error("shutter", 30)
    assert "shutter" in text and "drain" in text and "30 s" in text
