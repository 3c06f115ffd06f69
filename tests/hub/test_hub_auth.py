"""The authenticated port: tron's knockKnock/login handshake, permissions, replay protection."""

from __future__ import annotations

import asyncio
import base64
import json
import re

import pytest

from bridge.hub import AuthConfig, Login, commander_name, password_digest
from bridge.hub.auth import parse_login_args
from tests.hub.helpers import RawCommander, echo_actor, legacy_route, running_hub, tui_line
from tests.support.aio import aio_test

PASSWORDS = {"APO": "s3cret", "guest": "welcome", "toy_program": "toys"}
PROGRAMS = {"guest": {"actors": []}, "toy_program": {"actors": ["toy"]}}  # programs.json form
NONCE = re.compile(r'\.unnamed (\d+) auth : nonce="([A-Za-z0-9+/=]+)"\Z')


def login_text(nonce: str, program: str, password: str, username: str = "john") -> str:
    return (f'login program="{program}" username="{username}" '
            f'password="{password_digest(nonce, password)}" type="STUI" version="3.0"')


# -- the handshake without sockets ------------------------------------------------------------

def test_login_state_machine():
    login = Login(AuthConfig(PASSWORDS, PROGRAMS))
    assert login.handle("status").keywords[0].values == ("please log in.",)
    knock = login.handle("knockKnock")
    nonce = knock.keywords[0].values[0]
    assert knock.code == ":" and len(base64.b64decode(nonce)) == 64 and "\n" not in nonce
    ok = login.handle(login_text(nonce, "apo", "s3cret"))
    assert ok.code == ":" and ok.logged_in and login.logged_in
    assert (login.client.program, login.client.username, login.client.type) == (
        "APO", "john", "STUI")
    assert login.handle(login_text(nonce, "apo", "s3cret")).keywords[0].values == (
        "already logged in.",)
    assert login.handle("logout").keywords[0].name == "bye" and not login.logged_in
    # The old nonce is gone: replaying the login line is refused, before and after a knock.
    assert login.handle(login_text(nonce, "apo", "s3cret")).code == "f"
    new = login.handle("knockKnock").keywords[0].values[0]
    assert new != nonce
    assert login.handle(login_text(nonce, "apo", "s3cret")).keywords[0].values == (
        "incorrect password",)


@pytest.mark.parametrize("text, why", [
    ('login program="APO" username="x" password="{bad}"', "incorrect password"),
    ('login program="NOPE" username="x" password="{good}"', "unknown program"),
    ('login program="APO" username="x"', "not all arguments to login were found."),
    ("knockKnock", "please play by the rules."),
])
def test_failed_logins_consume_the_nonce(text, why):
    login = Login(AuthConfig(PASSWORDS, PROGRAMS))
    nonce = login.handle("knockKnock").keywords[0].values[0]
    reply = login.handle(text.format(bad="0" * 40, good=password_digest(nonce, "s3cret")))
    assert (reply.code, reply.keywords[0].values) == ("f", (why,))
    # The same nonce cannot be tried twice.
    second = login.handle(login_text(nonce, "APO", "s3cret"))
    assert second.keywords[0].values == ("please log in.",) and not login.logged_in


def test_no_passwords_configured_and_tron_program_fallback_refused():
    login = Login(AuthConfig({}))
    nonce = login.handle("knockKnock").keywords[0].values[0]
    assert login.handle(login_text(nonce, "APO", "x")).keywords[0].values == (
        "password not configured in server",)
    # tron also accepts sha1(nonce + program.lower()); we do not.
    login = Login(AuthConfig(PASSWORDS))
    nonce = login.handle("knockKnock").keywords[0].values[0]
    assert login.handle(login_text(nonce, "APO", "apo")).code == "f"


def test_names_and_login_arguments():
    assert commander_name("APO", "john") == "APO.john"
    assert commander_name("APO", "john", ["APO.john", "APO.john_2"]) == "APO.john_3"
    assert commander_name("my prog", "2fast!") == "my_prog._2fast_"
    assert parse_login_args('a="x \\" y" b=plain c=\'q\'') == {"a": 'x " y', "b": "plain",
                                                                  "c": "q"}


def test_config_from_tron_files(tmp_path):
    (tmp_path / "tronpass.cfg").write_text("[hub]\nAPO = s3cret\nguest = welcome\n")
    (tmp_path / "programs.json").write_text(json.dumps(PROGRAMS))
    config = AuthConfig.load(tmp_path / "tronpass.cfg", tmp_path / "programs.json")
    assert config.password_for("apo") == "s3cret" and config.password_for("GUEST") == "welcome"
    assert config.programs == PROGRAMS


# -- the port ---------------------------------------------------------------------------------

async def knock(tui: RawCommander, mid: int) -> str:
    tui.send_raw(tui_line(mid, "auth", "knockKnock"))
    match = NONCE.match(await tui.read_line())
    assert match and match.group(1) == str(mid)
    return match.group(2)


@aio_test
async def test_authenticated_port_login_permissions_and_isolation():
    async with echo_actor("toy") as toy, echo_actor("tcc") as tcc, running_hub(
            [legacy_route("toy", toy.port), legacy_route("tcc", tcc.port)],
            auth=AuthConfig(PASSWORDS, PROGRAMS)) as hub:
        assert hub.auth_port and hub.auth_port != hub.port
        plain = await RawCommander.connect(hub.port, "a.b")
        tui = await RawCommander.connect(hub.auth_port)
        await plain.read_until(lambda l: "TUI_2" in l)  # the TUI connection is a commander

        # Before login: only answers to its own commands, and nothing else gets through.
        tui.send_raw(tui_line(1, "toy", "status"))
        assert await tui.read_line() == '.unnamed 1 auth f why="please log in."'
        await plain.call("toy", "status")
        assert await tui.quiet(0.3) == []

        nonce = await knock(tui, 2)
        tui.send_raw(tui_line(3, "auth", login_text(nonce, "guest", "nope")))
        assert await tui.read_line() == '.unnamed 3 auth f why="incorrect password"'
        nonce = await knock(tui, 4)
        tui.send_raw(tui_line(5, "auth", login_text(nonce, "guest", "welcome", "bob")))
        assert await tui.read_line() == '.unnamed 5 auth : loggedIn; cmdrID="GUEST.bob"'
        # Everybody (now including it) hears who logged in; nobody saw the login itself.
        for cmdr in (plain, tui):
            lines = await cmdr.read_until(lambda l: l.startswith(".hub 0 hub i users"))
            assert lines[-3].startswith('.hub 0 hub i user="GUEST.bob","STUI","3.0","unknown",'
                                        '"127.0.0.1"')
            assert lines[-2] == '.hub 0 hub i Commanders="client.v1","GUEST.bob"'
            assert lines[-1] == '.hub 0 hub i users="GUEST.bob"'
        assert not [l for l in plain.lines if " auth " in l or nonce in l]

        # guest: no actors of its own, but the safe commands; keys/msg are free.
        tui.send_raw(tui_line(6, "toy", "open"))
        forbidden = await tui.read_until(lambda l: l.startswith("GUEST.bob 6 "))
        assert forbidden[-1] == ('GUEST.bob 6 hub f NoPermission="you do not have permission '
                                 'to command toy open"')
        tui.send_raw(tui_line(7, "toy", "status"))
        ok = await tui.read_until(lambda l: l.startswith("GUEST.bob 7 toy :"))
        assert ok[-1] == 'GUEST.bob 7 toy : echo=status'
        tui.send_raw(tui_line(8, "hub", "startNubs toy"))
        assert "NoPermission" in (await tui.read_until(lambda l: l.startswith("GUEST.bob 8 ")))[-1]
        tui.send_raw(tui_line(9, "hub", "status"))
        await tui.read_until(lambda l: l == "GUEST.bob 9 hub : ")
        tui.send_raw(tui_line(10, "nosuch", "x"))
        assert "NoTarget" in (await tui.read_until(lambda l: l.startswith("GUEST.bob 10 ")))[-1]
        # Logged in, it hears everybody's traffic.
        await plain.call("tcc", "anything")
        await tui.read_until(lambda l: l.startswith("a.b 2 tcc :"))

        # A god may do anything; a program may command its own actors.
        god = await RawCommander.connect(hub.auth_port)
        nonce = await knock(god, 1)
        god.send_raw(tui_line(2, "auth", login_text(nonce, "apo", "s3cret")))
        assert await god.read_line() == '.unnamed 2 auth : loggedIn; cmdrID="APO.john"'
        god.send_raw(tui_line(3, "tcc", "track 10 20"))
        assert (await god.read_until(lambda l: l.startswith("APO.john 3 tcc :")))[-1].endswith(
            'echo="track 10 20"')
        toys = await RawCommander.connect(hub.auth_port)
        nonce = await knock(toys, 1)
        toys.send_raw(tui_line(2, "auth", login_text(nonce, "toy_program", "toys", "john")))
        assert await toys.read_line() == (
            '.unnamed 2 auth : loggedIn; cmdrID="TOY_PROGRAM.john"')
        toys.send_raw(tui_line(3, "toy", "open"))
        await toys.read_until(lambda l: l == 'TOY_PROGRAM.john 3 toy : echo=open')
        toys.send_raw(tui_line(4, "tcc", "open"))
        assert "NoPermission" in (
            await toys.read_until(lambda l: l.startswith("TOY_PROGRAM.john 4 ")))[-1]
        for cmdr in (plain, tui, god, toys):
            await cmdr.close()


@aio_test
async def test_replayed_login_is_refused_on_every_connection():
    async with running_hub(auth=AuthConfig(PASSWORDS, PROGRAMS), port=None) as hub:
        assert hub.port is None and hub.auth_port
        first = await RawCommander.connect(hub.auth_port)
        nonce = await knock(first, 1)
        captured = tui_line(2, "auth", login_text(nonce, "APO", "s3cret"))
        first.send_raw(captured)
        assert await first.read_line() == '.unnamed 2 auth : loggedIn; cmdrID="APO.john"'

        # Someone who captured that line replays it after their own knockKnock...
        thief = await RawCommander.connect(hub.auth_port)
        await knock(thief, 1)
        thief.send_raw(captured)
        assert await thief.read_line() == '.unnamed 2 auth f why="incorrect password"'
        # ...or without one...
        thief.send_raw(captured)
        assert await thief.read_line() == '.unnamed 2 auth f why="please log in."'
        # ...and the owner cannot reuse the nonce after logging out either.
        first.send_raw(tui_line(3, "auth", "logout"))
        assert (await first.read_until(lambda l: l.startswith("APO.john 3")))[-1] == (
            "APO.john 3 auth : bye")
        first.send_raw(captured)
        assert await first.read_line() == '.unnamed 2 auth f why="please log in."'
        await knock(first, 4)
        first.send_raw(captured)
        assert await first.read_line() == '.unnamed 2 auth f why="incorrect password"'
        await asyncio.gather(first.close(), thief.close())
