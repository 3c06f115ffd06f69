"""The signature-based argument parser of legacy actor commands (pure, no sockets)."""

from __future__ import annotations

import enum
from typing import Literal, Optional

import pytest

from bridge.legacy.arguments import ArgumentError, Signature, split_words


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


async def expose(cmd, exptime: float, count: int = 1, *filters: str, dark: bool = False,
                 shutter: Literal["auto", "open"] = "auto", binning: Optional[int] = None,
                 dry_run: bool = False, mode: Mode = Mode.FAST):
    """Take an exposure."""


async def needs(cmd, *, target: str, keep: bool = True):
    pass


def call(function, text: str):
    parsed = Signature.from_function(function).parse(split_words(text))
    return parsed.args, parsed.kwargs


def test_usage_from_signature() -> None:
    assert Signature.from_function(expose).usage() == (
        "EXPTIME [--count INT] [--dark] [--shutter {auto,open}] [--binning INT] [--dry-run] "
        "[--mode {FAST,SLOW}] [FILTERS...]")
    assert Signature.from_function(needs).usage() == "--target TEXT [--no-keep]"


def test_positional_options_flags_and_rest() -> None:
    args, kwargs = call(expose, '2.5 --count 3 r "g band" --dark --shutter=open --dry_run')
    assert args == [2.5, 3, "r", "g band"]
    assert kwargs == {"dark": True, "shutter": "open", "binning": None, "dry_run": True,
                      "mode": Mode.FAST}
    args, kwargs = call(expose, "-1e3 --binning 0x10 --mode slow -- --not-an-option")
    assert args == [-1000.0, 1, "--not-an-option"]
    assert kwargs["binning"] == 16 and kwargs["mode"] is Mode.SLOW and kwargs["dark"] is False


def test_flags_negate_and_take_booleans() -> None:
    assert call(needs, "--target x")[1] == {"target": "x", "keep": True}
    assert call(needs, "--target x --no-keep")[1] == {"target": "x", "keep": False}
    assert call(needs, "--target=x --keep=F")[1] == {"target": "x", "keep": False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing argument EXPTIME"),
        ("abc", "invalid value 'abc' for EXPTIME (expected float)"),
        ("1 --count", "option --count needs a value"),
        ("1 --count 1.5", "invalid value '1.5' for --count (expected int)"),
        ("1 --shutter closed", "invalid value 'closed' for --shutter; choose from auto, open"),
        ("1 --bogus 3", "unknown option --bogus"),
        ("1 -x", "unknown option '-x'"),
        ('1 "unbalanced', "cannot split arguments: No closing quotation"),
        ("1 --no-count", "unknown option --no-count"),
    ],
)
def test_errors_explain_the_problem(text: str, message: str) -> None:
    with pytest.raises(ArgumentError) as info:
        call(expose, text)
    assert str(info.value) == message


def test_required_option_and_extra_words() -> None:
    with pytest.raises(ArgumentError, match="missing option --target"):
        call(needs, "--keep")
    with pytest.raises(ArgumentError, match="unexpected extra arguments: a b"):
        call(needs, "--target t a b")


def test_unsupported_signatures_are_refused_at_definition() -> None:
    async def kwargs(cmd, **options):
        pass

    async def union(cmd, value: int | str):
        pass

    async def nothing():
        pass

    for function in (kwargs, union, nothing):
        with pytest.raises(TypeError):
            Signature.from_function(function)


def test_type_from_default_and_string_annotations() -> None:
    def untyped(cmd, speed=1.5, name=None, label: "str" = "x"):
        pass

    args, _ = call(untyped, "--speed 2 --name n --label y")
    assert args == [2.0, "n", "y"]
