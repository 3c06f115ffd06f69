"""Line formats: reply and command headers, codes, framing, errors, formatting.

Each test pins one decision documented in protocol_specs/line-formats.md; the
conformance vectors cover the reference tables and the real TCC log.
"""

from __future__ import annotations

import pytest

from bridge.protocol import (
    FAILURE_CODES,
    REPLY_CODES,
    TERMINAL_CODES,
    ActorCommand,
    ActorReply,
    HubCommand,
    HubReply,
    Keyword,
    ProtocolError,
    format_actor_command,
    format_actor_reply,
    format_hub_command,
    format_hub_reply,
    is_failure,
    is_terminal,
    parse_actor_command,
    parse_actor_reply,
    parse_hub_command,
    parse_hub_reply,
)
from bridge.protocol.codes import normalize

# --- codes -------------------------------------------------------------------------------


def test_codes() -> None:
    assert REPLY_CODES == set(">iwde:f!IWDE:F!")
    assert {c for c in REPLY_CODES if is_terminal(c)} == set(":fF!") == TERMINAL_CODES
    assert {c for c in REPLY_CODES if is_failure(c)} == set("fF!") == FAILURE_CODES
    assert not is_terminal(">") and not is_terminal("e") and not is_failure(":")
    assert normalize("I") == "i" and normalize(":") == ":"


@pytest.mark.parametrize("code", sorted(REPLY_CODES))
def test_every_code_either_case(code: str) -> None:
    assert parse_actor_reply(f"1 2 {code} a").code == code
    assert parse_hub_reply(f"a.b 1 act {code} a").code == code


@pytest.mark.parametrize("code", list("xXaA?.;0") + ["::", "ii"])
def test_other_codes_are_rejected(code: str) -> None:
    with pytest.raises(ProtocolError):
        parse_actor_reply(f"1 2 {code} a")


# --- actor replies -----------------------------------------------------------------------


def test_actor_reply_order() -> None:
    assert parse_actor_reply("3 7 : a") == ActorReply(3, 7, ":", (Keyword("a"),))
    assert parse_actor_reply("7 3 : a", mid_first=True) == ActorReply(3, 7, ":", (Keyword("a"),))


@pytest.mark.parametrize("line", ["1 2 :", "1 2 : ", "1 2 :\t", "1 2 :  \t "])
def test_empty_keyword_list_with_or_without_blank(line: str) -> None:
    assert parse_actor_reply(line) == ActorReply(1, 2, ":")


@pytest.mark.parametrize("line", ["1 2 :key=1", "1 2 ikey=1", "1 2 :;", 'a.b 1 act :"x"'])
def test_code_must_be_followed_by_a_blank_or_end(line: str) -> None:
    with pytest.raises(ProtocolError):
        (parse_hub_reply if line.startswith("a.b") else parse_actor_reply)(line)


@pytest.mark.parametrize("line, cid, mid", [
    (" 1 2 : a", 1, 2), ("\t 1 2 : a", 1, 2), ("01 002 : a", 1, 2), ("0 0 : a", 0, 0),
    ("70000 5000000000 : a", 70000, 5000000000),
])
def test_actor_ids(line: str, cid: int, mid: int) -> None:
    reply = parse_actor_reply(line)
    assert (reply.cid, reply.mid) == (cid, mid)


@pytest.mark.parametrize("line", ["-1 2 : a", "1 -2 : a", "+1 2 : a", "1.0 2 : a", "a 2 : a",
                                  "1 : a", "", "   ", "1 2"])
def test_bad_actor_headers(line: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_actor_reply(line)
    assert info.value.reason == "malformed reply header"


@pytest.mark.parametrize("line", ["\u0661 2 : a", "1 \u0662 : a", "\uff11 2 : a"])
def test_ids_are_ascii_digits(line: str) -> None:
    """Minimal case: a Unicode decimal digit (Arabic-Indic one, fullwidth one) is not an id."""
    with pytest.raises(ProtocolError):
        parse_actor_reply(line)


@pytest.mark.parametrize("line", ["a.b \u0661 act : a", "a.b \uff11 act : a"])
def test_hub_mid_is_ascii_digits(line: str) -> None:
    with pytest.raises(ProtocolError):
        parse_hub_reply(line)


def test_keyword_error_position_is_a_column_of_the_whole_line() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_actor_reply("12 34 i  a b")
    assert info.value.position == 11 and info.value.line == "12 34 i  a b"
    with pytest.raises(ProtocolError) as info:
        parse_hub_reply("a.b 1 act w x=1;;")
    assert info.value.position == 16


@pytest.mark.parametrize("suffix", ["\n", "\r", "\r\n", "\r\n\r\n"])
def test_trailing_line_terminators_are_dropped(suffix: str) -> None:
    assert parse_actor_reply("1 2 i a=1" + suffix) == ActorReply(1, 2, "i", (Keyword("a", ("1",)),))
    assert parse_hub_reply("a.b 1 act i a" + suffix).keywords == (Keyword("a"),)
    assert parse_actor_command("5 ping" + suffix) == ActorCommand("ping", 5)
    assert parse_hub_command("a.b 1 act ping" + suffix).text == "ping"


# --- hub replies -------------------------------------------------------------------------


@pytest.mark.parametrize("commander", [".hub", ".unnamed", "TUI_3", "APO.john", "client.v5",
                                       "APO.john.apo", "_x.y", "a-b", ".tcc", "telrun.user11"])
def test_hub_reply_commanders(commander: str) -> None:
    assert parse_hub_reply(f"{commander} 1 tcc i a").commander == commander


@pytest.mark.parametrize("commander", ["1a.b", "-a", "a/b", "é.b"])
def test_bad_hub_reply_commanders(commander: str) -> None:
    with pytest.raises(ProtocolError):
        parse_hub_reply(f"{commander} 1 tcc i a")


@pytest.mark.parametrize("actor", ["tcc", "keys_tcc", "hub.tcc", "_a", "a-b", "cmds", "TCC"])
def test_hub_reply_actors(actor: str) -> None:
    assert parse_hub_reply(f"a.b 1 {actor} i a").actor == actor


@pytest.mark.parametrize("actor", ["1tcc", "-x", ".x", "é"])
def test_bad_hub_reply_actors(actor: str) -> None:
    with pytest.raises(ProtocolError):
        parse_hub_reply(f"a.b 1 {actor} i a")


def test_leading_zero_mid_comes_back_as_an_integer() -> None:
    reply = parse_hub_reply("apo.apo 012 tcc : ")
    assert reply.mid == 12
    assert format_hub_reply(reply) == "apo.apo 12 tcc : "


# --- formatting replies ------------------------------------------------------------------


def test_formatters_always_put_a_blank_after_the_code() -> None:
    assert format_actor_reply(ActorReply(1, 2, ":")) == "1 2 : "
    assert format_actor_reply(ActorReply(1, 2, ":"), mid_first=True) == "2 1 : "
    assert format_hub_reply(HubReply(".hub", 0, "hub", "i")) == ".hub 0 hub i "
    assert format_actor_reply(ActorReply(1, 2, "i", (Keyword("a", ("1",)), Keyword("b")))) == \
        "1 2 i a=1; b"


def test_formatted_lines_have_no_terminator() -> None:
    reply = ActorReply(1, 2, "i", (Keyword("t", ("a\nb\r",), (True,)),))
    line = format_actor_reply(reply)
    assert "\n" not in line and "\r" not in line
    assert parse_actor_reply(line) == reply


# --- actor commands ----------------------------------------------------------------------


@pytest.mark.parametrize("line, expected", [
    ("status", ActorCommand("status")),
    ("5 status", ActorCommand("status", 5)),
    ("APO.john 5 status", ActorCommand("status", 5, "APO.john")),
    (".hub 1 ping", ActorCommand("ping", 1, ".hub")),
    ("client.v7 12 status", ActorCommand("status", 12, "client.v7")),
    ("a_b.c 5 status", ActorCommand("status", 5, "a_b.c")),
    ("APO._2fast 5 status", ActorCommand("status", 5, "APO._2fast")),
    ("1 12 info", ActorCommand("info", 12, None, 1)),
    ("APO.john 1 12 info", ActorCommand("12 info", 1, "APO.john")),  # no cid after a commander
    ("TUI_3 5 status", ActorCommand("TUI_3 5 status")),
    ("APO.john 5", ActorCommand("5", None, "APO.john")),
    ("APO.john status", ActorCommand("status", None, "APO.john")),
    ("  7\t ping  a  ", ActorCommand("ping  a", 7)),
    ("007 x", ActorCommand("x", 7)),
    ("1.5 x", ActorCommand("x", None, "1.5")),  # any dotted word is a commander
])
def test_actor_command_headers(line: str, expected: ActorCommand) -> None:
    assert parse_actor_command(line) == expected


@pytest.mark.parametrize("line", ["", " ", "\t\t", "\r\n", "  \n"])
def test_empty_actor_command_is_an_error(line: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_actor_command(line)
    assert info.value.reason == "empty command"


def test_format_actor_command() -> None:
    assert format_actor_command(ActorCommand("status")) == "status"
    assert format_actor_command(ActorCommand("status", 5)) == "5 status"
    assert format_actor_command(ActorCommand("status", 5, "APO.john")) == "APO.john 5 status"
    assert format_actor_command(ActorCommand("info", 12, None, 1)) == "1 12 info"
    # There is no cid form after a commander: the cid is not written.
    assert format_actor_command(ActorCommand("x", 3, "a.b", 2)) == "a.b 3 x"


@pytest.mark.parametrize("text, position", [("a\nb", 1), ("ab\r", 2)])
def test_command_text_with_a_line_terminator_is_refused(text: str, position: int) -> None:
    for command, fmt in ((ActorCommand(text, 5), format_actor_command),
                         (HubCommand("a.b", 1, "tcc", text), format_hub_command)):
        with pytest.raises(ProtocolError) as info:
            fmt(command)
        assert info.value.position == position


# --- hub commands ------------------------------------------------------------------------


@pytest.mark.parametrize("line, expected", [
    ("apo.apo 12 tcc show status", HubCommand("apo.apo", 12, "tcc", "show status")),
    ("a.b 1 hub.sub x", HubCommand("a.b", 1, "hub.sub", "x")),
    ("TUI_3 1 tcc x", HubCommand("TUI_3", 1, "tcc", "x")),
    ("_a._b 1 _c y", HubCommand("_a._b", 1, "_c", "y")),
    ("a.b 1 tcc", HubCommand("a.b", 1, "tcc", "")),
    ("a.b 1 tcc   ", HubCommand("a.b", 1, "tcc", "")),
    ("A.B 01 TCC status", HubCommand("A.B", 1, "TCC", "status")),
    ("a.b 1 tcc  two  spaces  ", HubCommand("a.b", 1, "tcc", "two  spaces")),
])
def test_hub_command_headers(line: str, expected: HubCommand) -> None:
    assert parse_hub_command(line) == expected


@pytest.mark.parametrize("line", ["12 tcc x", ".hub 1 tcc x", "a-b 1 tcc x", "1a.b 1 tcc x",
                                  "a.b -1 tcc x", "a.b 1", "a.b. 1 tcc x", "a..b 1 tcc x", ""])
def test_bad_hub_command_headers(line: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_hub_command(line)
    assert info.value.reason == "malformed hub command header"


def test_hub_command_without_commander() -> None:
    assert parse_hub_command("12 tcc show status", with_commander=False) == \
        HubCommand("", 12, "tcc", "show status")
    with pytest.raises(ProtocolError):
        parse_hub_command("a.b 12 tcc x", with_commander=False)
    assert format_hub_command(HubCommand("", 12, "tcc", "x")) == "12 tcc x"
    assert format_hub_command(HubCommand("a.b", 1, "tcc", "")) == "a.b 1 tcc "


# --- errors ------------------------------------------------------------------------------


def test_protocol_error() -> None:
    exc = ProtocolError("bad", "abc", 2)
    assert isinstance(exc, ValueError)
    assert (exc.reason, exc.line, exc.position) == ("bad", "abc", 2)
    assert str(exc) == "bad (at column 3)"
    assert str(ProtocolError("bad")) == "bad"
    assert exc.to_json() == {"reason": "bad", "position": 2}
