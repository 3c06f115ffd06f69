"""Value-type conversion rules (protocol_specs/dictionaries.md, the opscore table).

Each rule is checked on explicit accept/reject cases, then against opscore's own
types (sdss-opscore from PyPI) on generated texts: our conversion must agree with
opscore's on every input.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opscore.protocols import types as ops

from bridge.protocol.dictionary import ConversionError
from bridge.protocol.dictionary.types import (
    BitsType,
    BoolType,
    DoubleType,
    EnumType,
    FloatType,
    HexType,
    IntType,
    LongType,
    PVTType,
    StringType,
    UIntType,
    parse_bit_fields,
)

REJECT = object()


def check(vtype, text, expected):
    if expected is REJECT:
        with pytest.raises(ConversionError):
            vtype.convert(text)
        return
    got = vtype.convert(text)
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("42", 42), ("-42", -42), ("+42", 42), ("0", 0), ("00", 0), ("0x1F", 31), ("0X1f", 31),
        ("0o17", 15), ("0b101", 5), ("1_000", 1000), (" 7 ", 7),
        ("2147483647", 2147483647), ("-2147483647", -2147483647),
        ("010", REJECT), ("007", REJECT), ("1.0", REJECT), ("1e3", REJECT), ("", REJECT),
        ("nan", REJECT), ("2147483648", REJECT), ("-2147483648", REJECT), ("0x", REJECT),
        ("1__0", REJECT), ("T", REJECT),
    ],
)
def test_int(text, expected):
    check(IntType(), text, expected)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0", 0), ("4294967295", 4294967295), ("0xFFFFFFFF", 4294967295),
        ("-1", 0x80000001), ("-2147483647", 0xFFFFFFFF), ("2147483648", 2147483648),
        ("4294967296", REJECT), ("-2147483648", REJECT), ("012", REJECT), ("1.5", REJECT),
    ],
)
def test_uint_follows_opscore_sign_magnitude(text, expected):
    check(UIntType(), text, expected)


def test_long_is_unbounded_and_hex_is_base_16():
    check(LongType(), str(2**70), 2**70)
    check(LongType(), "-0x10", -16)
    check(LongType(), "08", REJECT)
    check(HexType(), "1F", 31)
    check(HexType(), "0x1F", 31)
    check(HexType(), "ff00ff00", 0xFF00FF00)
    check(HexType(), "010", 16)
    check(HexType(), "xyz", REJECT)
    check(HexType(), "", REJECT)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.5", 1.5), ("1e5", 1e5), (".5", 0.5), ("5.", 5.0), ("+.5e1", 5.0), (" 2.5 ", 2.5),
        ("1_0.5", 10.5), ("nan", math.nan), ("NaN", math.nan), ("inf", math.inf),
        ("-Infinity", -math.inf), ("3.4028234663852886e38", 3.4028234663852886e38),
        ("-3.4028234663852886e38", -3.4028234663852886e38),
        ("1e400", math.inf),  # float() overflows to inf, which opscore lets through
        ("3.5e38", REJECT), ("-1e39", REJECT), ("0x1p3", REJECT), ("abc", REJECT), ("", REJECT),
        ("1,5", REJECT),
    ],
)
def test_float(text, expected):
    check(FloatType(), text, expected)


def test_double_has_no_float32_limit():
    check(DoubleType(), "1e39", 1e39)
    check(DoubleType(), "1e309", math.inf)
    check(DoubleType(), "x", REJECT)


def test_string_accepts_anything():
    for text in ("", " ", "héllo wörld", '"quoted"', "a,b;c", "NaN", "42"):
        check(StringType(), text, text)


def test_enum_ignores_case_and_returns_the_dictionary_spelling():
    enum = EnumType(labels=("Drifting", "Halted", "NotAvailable", "?"))
    check(enum, "halted", "Halted")
    check(enum, "HALTED", "Halted")
    check(enum, "notavailable", "NotAvailable")
    check(enum, "?", "?")
    check(enum, "0", REJECT)  # no numeric index from text
    check(enum, "Halted ", REJECT)
    check(enum, "", REJECT)


def test_bool_labels_are_case_sensitive():
    flag = BoolType(labels=("F", "T"))
    check(flag, "T", True)
    check(flag, "F", False)
    for text in ("t", "f", "true", "1", "0", "", "T "):
        check(flag, text, REJECT)
    inverted = BoolType(labels=("True", "False"))  # as ecamera/gcamera declare it
    check(inverted, "True", False)
    check(inverted, "False", True)
    onoff = BoolType(labels=("Off", "On"))
    check(onoff, "On", True)
    check(onoff, "on", REJECT)


def test_bits_convert_as_uint_and_decode_fields():
    bits = BitsType(fields=parse_bit_fields(["ready", ":2", "mode:3"]))
    check(bits, "0x15", 0x15)
    check(bits, "-1", 0x80000001)
    assert bits.decode(0b111001) == {"ready": 1, "mode": 0b111}
    with pytest.raises(ValueError):
        parse_bit_fields(["a:20", "b:13"])
    with pytest.raises(ValueError):
        parse_bit_fields(["native"])
    with pytest.raises(ValueError):
        parse_bit_fields(["x:0"])


def test_pvt_is_float_float_double():
    pvt = PVTType()
    assert pvt.convert_group(["1.5", "-0.25", "4734909029.03"]) == (1.5, -0.25, 4734909029.03)
    assert pvt.convert_group(["1", "2", "1e39"]) == (1.0, 2.0, 1e39)  # time is a double
    with pytest.raises(ConversionError):
        pvt.convert_group(["1e39", "2", "3"])  # position is a float
    with pytest.raises(ConversionError):
        pvt.convert_group(["1", "x", "3"])
    marked = PVTType(invalid="NaN")
    assert marked.convert_group(["nan", "1", "NAN"]) == (None, 1.0, None)


@pytest.mark.parametrize(
    "vtype, text",
    [
        (FloatType(invalid="nan"), "nan"), (FloatType(invalid="nan"), "NaN"),
        (FloatType(invalid="NaN"), "NAN"), (IntType(invalid="nan"), "nan"),
        (UIntType(invalid="NaN"), "nan"), (IntType(invalid="-1"), "-1"),
        (StringType(invalid="?"), "?"), (EnumType(labels=("a",), invalid="none"), "None"),
        (BoolType(labels=("F", "T"), invalid="?"), "?"), (DoubleType(invalid="x"), "X"),
        (HexType(invalid="nan"), "NaN"),
    ],
)
def test_invalid_markers_compare_ignoring_case_and_give_none(vtype, text):
    assert vtype.convert(text) is None


def test_without_a_marker_nan_is_a_real_float_and_an_int_error():
    value = FloatType().convert("nan")
    assert math.isnan(value)
    with pytest.raises(ConversionError):
        IntType().convert("nan")
    assert IntType(invalid="-1").convert("1") == 1


# -- agreement with opscore's own types on generated inputs ----------------------

_NUMERIC_TEXT = st.text(alphabet="0123456789+-._ xXoObBeEaAfFnNiItTyYlL", max_size=12)
_TEXTS = st.one_of(
    _NUMERIC_TEXT,
    st.text(max_size=8),
    st.sampled_from(
        ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "3.5e38", "2147483647", "2147483648",
         "-2147483647", "-2147483648", "4294967295", "4294967296", "0x7fffffff", "T", "F",
         "true", "Halted", "halted", "DRIFTING", "?", "-1", "-0x10", "0xffffffff", "010", "0", "00", "0_0", "1_000", " 7 ", "\u0663"]
    ),
    st.integers().map(str),
    st.floats().map(repr),
)


def _ours(vtype, text):
    try:
        value = vtype.convert(text)
    except ConversionError:
        return ("reject",)
    return ("invalid",) if value is None else ("ok", value)


def _theirs(otype, text):
    try:
        value = otype(text)
    except ops.InvalidValueError:
        return ("invalid",)
    except (ValueError, TypeError, OverflowError):
        return ("reject",)
    if isinstance(otype, ops.ValueType) and otype.__name__ == "Bool":
        return ("ok", bool(value))
    return ("ok", value.native)


def _same(a, b):
    if a[0] != b[0]:
        return False
    if a[0] != "ok":
        return True
    x, y = a[1], b[1]
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y and type(x) is type(y)


PAIRS = [
    (IntType(), ops.Int()), (IntType(invalid="nan"), ops.Int(invalid="nan")),
    (UIntType(), ops.UInt()), (UIntType(invalid="NaN"), ops.UInt(invalid="NaN")),
    (LongType(), ops.Long()), (HexType(), ops.Hex()),
    (FloatType(), ops.Float()), (FloatType(invalid="NaN"), ops.Float(invalid="NaN")),
    (DoubleType(), ops.Double()), (StringType(), ops.String()),
    (StringType(invalid="?"), ops.String(invalid="?")),
    (EnumType(labels=("Drifting", "Halted", "?")), ops.Enum("Drifting", "Halted", "?")),
    (BoolType(labels=("F", "T")), ops.Bool("F", "T")),
    (BoolType(labels=("false", "true")), ops.Bool("false", "true")),
    (BitsType(fields=parse_bit_fields(["a", "b:4"])), ops.Bits("a", "b:4")),
]


# Every generated text is checked with every pair (one @given test: pytest-twisted
# cannot run a parametrized @given test).
@settings(max_examples=1000, deadline=None)
@given(text=_TEXTS)
def test_conversion_agrees_with_opscore(text):
    for ours, theirs in PAIRS:
        assert _same(_ours(ours, text), _theirs(theirs, text)), (ours, text)
