"""Fuzzing every parse function: only ProtocolError may escape, and nothing blows up.

Random text (hypothesis, and a seeded generator with a bounded count) goes into
every parser of bridge.protocol; the lenient keyword parser must never raise at
all. A separate guard feeds pathological inputs (long runs of quotes, commas,
``=``, blanks, backslashes; 64 KiB lines) and checks each parse finishes within a
generous CPU-time bound.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.protocol import (
    ProtocolError,
    parse_actor_command,
    parse_actor_reply,
    parse_hub_command,
    parse_hub_reply,
    parse_keywords,
    parse_keywords_lenient,
)
from bridge.protocol.fastpath import parse_keywords_fast
from bridge.protocol.grammar import parse_keywords_grammar
from tests.protocol.test_properties import SPECIAL, keyword_list_texts, noisy

#: Every parse function, as (name, function of one string).
PARSERS: dict[str, Callable[[str], object]] = {
    "parse_keywords": parse_keywords,
    "parse_keywords_grammar": parse_keywords_grammar,
    "parse_actor_reply": parse_actor_reply,
    "parse_actor_reply(mid_first)": lambda s: parse_actor_reply(s, mid_first=True),
    "parse_hub_reply": parse_hub_reply,
    "parse_actor_command": parse_actor_command,
    "parse_hub_command": parse_hub_command,
    "parse_hub_command(no commander)": lambda s: parse_hub_command(s, with_commander=False),
}

#: Header prefixes that make the keyword part of a line reachable.
PREFIXES = ["", "1 2 i ", "a.b 1 act i ", "a.b 1 act ", "1 act "]


def check_one(text: str) -> None:
    """Every parser on ``text`` (with each header prefix): a result or a ProtocolError."""
    fast = parse_keywords_fast(text)
    assert fast is None or isinstance(fast, tuple)
    assert isinstance(parse_keywords_lenient(text), tuple)
    for prefix in PREFIXES:
        line = prefix + text
        for name, parse in PARSERS.items():
            try:
                parse(line)
            except ProtocolError as exc:
                assert 0 <= exc.position <= len(line), (name, line, exc.position)


_any_text = st.text(st.characters(), max_size=40)  # includes lone surrogates
_protocol_text = st.text(SPECIAL + ":>!0123456789", max_size=40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_any_text, _protocol_text, noisy(keyword_list_texts())))
def test_fuzz_text(text: str) -> None:
    check_one(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=40), st.sampled_from(["utf-8", "latin-1"]))
def test_fuzz_bytes(data: bytes, encoding: str) -> None:
    errors = "surrogateescape" if encoding == "utf-8" else "strict"
    check_one(data.decode(encoding, errors))


def test_fuzz_seeded() -> None:
    """A fixed, reproducible batch: 1000 strings over the protocol's alphabet."""
    rng = random.Random(20081202)
    alphabet = SPECIAL + ":>!0123456789 ;;,,==\"\"''\\\\"
    for _ in range(1000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        check_one(text)


# --- catastrophic-backtracking guard -----------------------------------------------------

K = 65536
#: Generous: the linear work on these inputs takes at most about 0.45 s of CPU (lenient
#: parsing of 64 KiB of junk, which re-parses the rest after each of its 8 recoveries)
#: and under 0.1 s for everything else; a quadratic or exponential parse takes minutes.
BOUND_SECONDS = 2.0
#: A child that has not answered after this long is stuck (killed, reported).
HARD_TIMEOUT = 5.0

PATHOLOGICAL = {
    "double quotes": '"' * K,
    "single quotes": "'" * K,
    "commas": "a=" + "," * K,
    "equals": "a" + "=" * K,
    "blanks": " " * K,
    "tabs": "\t" * K,
    "blanks then a quote": "a=1" + " " * K + '"',
    "backslashes": '\\' * K,
    "backslashes in quotes": 'a="' + "\\" * K,
    "escaped quotes": 'a="' + '\\"' * (K // 2),
    "semicolons": "a" + ";" * K,
    "blank commas then a quote": "a=" + " , " * 40 + '"',
    "wide blank commas then junk": "a=" + "  ,  " * 40 + " x y",
    "blank commas, valid": "a=" + " , " * (K // 3),
    "unterminated 64 KiB string": 'a="' + "x" * K,
    "64 KiB bare value": "a=" + "x" * K,
    "64 KiB of blank-separated keywords": "a=1 " * (K // 4),
    "64 KiB of mixed junk": 'a = "x" , \'y\' , z  ' * (K // 20),
    "quote blank": '" ' * (K // 2),
    "header digits": "1 " * (K // 2),
    "dotted words": "a." * (K // 2),
    "16 KiB of keywords": "k=1,\"x y\"; " * 1600,
}

#: What runs on each pathological input, in the child.
GUARDED: dict[str, Callable[[str], object]] = {
    "parse_keywords": parse_keywords,
    "parse_keywords_lenient": parse_keywords_lenient,
    "parse_actor_reply": lambda s: parse_actor_reply("1 2 i " + s),
    "parse_hub_reply": lambda s: parse_hub_reply("a.b 1 act i " + s),
    "parse_hub_reply(header)": parse_hub_reply,
    "parse_actor_reply(header)": parse_actor_reply,
    "parse_actor_command": parse_actor_command,
    "parse_hub_command": lambda s: parse_hub_command("a.b 1 act " + s),
    "parse_hub_command(header)": parse_hub_command,
}


def _time_all(text: str, conn) -> None:
    """Child process: report CPU seconds of each guarded parse, announcing each first."""
    for name, parse in GUARDED.items():
        conn.send(("start", name))
        start = time.process_time()
        try:
            parse(text)
        except ProtocolError:
            pass
        conn.send(("done", name, time.process_time() - start))
    conn.send(("end",))


@pytest.mark.parametrize("label", list(PATHOLOGICAL))
def test_no_catastrophic_backtracking(label: str) -> None:
    """A guard against exponential (or quadratic) blow-up, not a speed test.

    Each parse of a pathological input must finish within BOUND_SECONDS of CPU
    time, several times what linear parsing needs (CPU time of the child, so a
    busy machine does not matter); a regular expression that backtracks
    quadratically needs minutes on these inputs, exponentially hours. The parse runs in a
    forked child so that a blow-up fails the test after HARD_TIMEOUT instead of
    hanging the suite. Speed itself is measured by the benchmark.
    """
    text = PATHOLOGICAL[label]
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_time_all, args=(text, child), daemon=True)
    proc.start()
    child.close()
    slow: list[str] = []
    current = None
    deadline = time.monotonic() + HARD_TIMEOUT * len(GUARDED)
    try:
        while True:
            remaining = min(HARD_TIMEOUT, deadline - time.monotonic())
            if remaining <= 0 or not parent.poll(remaining):
                pytest.fail(f"{current} did not finish within {HARD_TIMEOUT} s on {label!r}")
            try:
                message = parent.recv()
            except EOFError:
                pytest.fail(f"the child died during {current} on {label!r}")
            if message[0] == "start":
                current = message[1]
            elif message[0] == "done":
                if message[2] > BOUND_SECONDS:
                    slow.append(f"{message[1]}: {message[2]:.2f} s")
            else:
                break
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    assert not slow, f"{label!r} took too long: {slow}"
