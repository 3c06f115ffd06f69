"""The hub's perms actor and its enforcement, httpRoot, keys for the hub's own sources,
and the [hub]/[actors.X] settings that configure them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bridge.hub import AuthConfig, password_digest
from bridge.hub.auth import load_programs
from bridge.hub.perms import Permissions, PermsVerbs
from bridge.protocol import Keyword, format_keywords
from bridge.service.config import ConfigError, parse_config
from tests.hub.helpers import RawCommander, echo_actor, legacy_route, running_hub, tui_line
from tests.support.aio import aio_test

DATA = Path(__file__).parent / "data"
PASSWORDS = {"APO": "s3cret", "guest": "welcome", "toy_program": "toys", "nobody": "x"}
NONCE = re.compile(r'\.unnamed (\d+) auth : nonce="([A-Za-z0-9+/=]+)"\Z')
TCC_SAFE = r"(^device )|(status$)"


class Recorder:
    """An Answer that keeps ``(code, keywords text)``."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.text = ""

    def _add(self, code: str, keywords: tuple[Keyword, ...]) -> None:
        self.lines.append((code, format_keywords(keywords)))

    def inform(self, *keywords: Keyword) -> None:
        self._add("i", keywords)

    def warn(self, *keywords: Keyword) -> None:
        self._add("w", keywords)

    def fail(self, *keywords: Keyword) -> None:
        self._add("f", keywords)

    def finish(self, *keywords: Keyword) -> None:
        self._add(":", keywords)

    def take(self) -> list[tuple[str, str]]:
        lines, self.lines = self.lines, []
        return lines


# -- tron's rules, without sockets --------------------------------------------------------------

def test_tables_start_like_trons_and_status_lists_them():
    default = Recorder()
    perms = Permissions(default, load_programs(DATA / "programs.json"))
    perms.add_actors(["hub"])
    default.take()
    cmd = Recorder()
    perms.status(cmd)
    assert cmd.take() == [
        ("i", 'actors="hub"'), ("i", 'programs="APO","GUEST","LCO","OBSERVER","TOY_PROGRAM"'),
        ("i", "lockedActors"), ("i", 'authList="APO","hub","perms"'), ("i", 'authList="GUEST"'),
        ("i", 'authList="LCO","hub","perms"'), ("i", 'authList="OBSERVER","hub","perms"'),
        ("i", 'authList="TOY_PROGRAM","toy"')]


def test_check_access_follows_trons_order():
    default, cmd = Recorder(), Recorder()
    perms = Permissions(default, {"guest": {"actors": []}, "toy_program": {"actors": ["toy"]}})
    safe = re.compile(TCC_SAFE)
    # An actor never registered (never connected) is open to everybody.
    assert perms.check_access("guest", "tcc", "track", cmd, safe)
    perms.add_actors(["tcc", "toy"])
    default.take()
    assert perms.check_access("APO", "tcc", "track", cmd, safe)          # gods: registered
    assert perms.check_access("toy_program", "toy", "anything", cmd)
    assert not perms.check_access("toy_program", "tcc", "track", cmd, safe)
    assert perms.check_access("guest", "tcc", "device x", cmd, safe)     # per-actor safe
    assert perms.check_access("guest", "tcc", "show status", cmd, safe)
    assert not perms.check_access("guest", "tcc", "status now", cmd, safe)
    assert perms.check_access("guest", "boss", "expose", cmd, None, needs_auth=False)
    assert cmd.take() == [] and default.take() == []
    # An unknown program: permsTxt to the command and to the hub's .perms writer.
    assert not perms.check_access("nobody", "tcc", "track", cmd, safe)
    why = ("w", 'permsTxt="Authorization table has no entry for program: NOBODY"')
    assert cmd.take() == [why] and default.take() == [why]
    # Locked: only gods, not even the safe commands.
    perms.lock(["tcc"], cmd)
    assert cmd.take() == [("i", 'lockedActors="tcc"')]
    assert not perms.check_access("guest", "tcc", "status", cmd, safe)
    assert cmd.take() == [("w", 'text="tcc is locked by APO"')]
    assert perms.check_access("observer", "tcc", "track", cmd, safe)


def test_perms_verbs_answer_like_tron():
    perms = Permissions(Recorder(), {"guest": {"actors": []}})
    perms.add_actors(["hub"])
    verbs = PermsVerbs(perms, lambda: ["APO", "NEWPROG"])

    def run(text: str) -> list[tuple[str, str]]:
        cmd = Recorder()
        cmd.text = text
        verbs.run(cmd)
        return cmd.take()

    assert run("") == [(":", "")]
    assert run("bogus") == [("f", 'permsTxt="No command named bogus"')]
    assert run("lock hub") == [("i", 'lockedActors="hub"'), (":", "")]
    assert run("lock") == [("w", 'permsTxt="Actor hub is already locked"'),
                           ("i", 'lockedActors="hub","perms"'), (":", "")]
    # tron fails "unlock" without names (dictionary changed size during iteration).
    assert run("unlock") == [("i", "lockedActors"), (":", "")]
    assert run("unlock tcc") == [("w", 'permsTxt="Actor tcc was not locked"'),
                                 ("i", "lockedActors"), (":", "")]
    assert run("lock tcc") == [
        ("w", 'permsTxt="Actor tcc is not subject to permissions and will not be locked"'),
        ("i", "lockedActors"), (":", "")]
    assert run("setLocked *") == [("i", 'lockedActors="hub","perms"'), (":", "")]
    assert run("setLocked") == [("i", "lockedActors"), (":", "")]
    assert run("register foo") == [("i", 'authList="FOO"'),
                                   ("i", 'programs="APO","FOO","GUEST","LCO","OBSERVER"'),
                                   (":", "")]
    assert run("register FOO")[0] == (
        "w", 'permsTxt="Program FOO already has an authorization entry, which will not be '
             'modified."')
    assert run("register") == [
        ("f", 'text="perms register requires one or more program names"')]
    assert run("register *")[0] == ("i", 'authList="NEWPROG"')
    assert run("set program=FOO hub perms") == [("i", 'authList="FOO","hub","perms"'), (":", "")]
    assert run("add program=FOO msg") == [
        ("w", 'permsTxt="Actor msg is not subject to permissions."'),
        ("i", 'authList="FOO","hub","perms"'), (":", "")]
    assert run("drop program=FOO hub") == [("i", 'authList="FOO","perms"'), (":", "")]
    assert run("set hub") == [("f", 'authTxt="no program specified"')]
    # One terminal reply (tron follows this f with a ":").
    assert run("set program=NOPE hub") == [
        ("f", 'permsTxt="Program NOPE did not have an authorization entry, so could not be set"')]
    assert run("unregister FOO APO")[:2] == [
        ("w", 'permsTxt="Super-APO cannot be removed from the list of authorized programs"'),
        ("i", 'authList="APO","hub","perms"')]
    assert "FOO" not in perms.programs and "APO" in perms.programs


def test_programs_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "programs.json"
    bad.write_text(json.dumps({"guest": {"actors": "tcc"}}))
    with pytest.raises(ValueError, match="programs.json: program 'guest'"):
        load_programs(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected an object"):
        load_programs(bad)


def test_config_hub_http_root_programs_and_safe_commands(tmp_path):
    programs = tmp_path / "programs.json"
    programs.write_text("{}")
    config = parse_config({
        "hub": {"port": 0, "http_host": "sdss5-hub", "http_root": "/data/", "programs":
                "programs.json"},
        "actors": {"tcc": {"lives": "legacy", "port": 1, "safe_commands": TCC_SAFE}},
    }, base=tmp_path)
    assert config.hub is not None
    assert (config.hub.http_host, config.hub.http_root) == ("sdss5-hub", "/data/")
    assert config.hub.programs == programs
    assert config.routing_table().get("tcc").options["safe_commands"] == TCC_SAFE
    default = parse_config({"hub": {}})
    assert default.hub is not None and (default.hub.http_host, default.hub.http_root) == (
        "localhost", "/")
    with pytest.raises(ConfigError, match=r"actors\.tcc\.safe_commands: not a valid regular"):
        parse_config({"actors": {"tcc": {"lives": "legacy", "port": 1,
                                         "safe_commands": "(unclosed"}}})
    with pytest.raises(ConfigError, match=r"hub\.programs: file"):
        parse_config({"hub": {"programs": "missing.json"}}, base=tmp_path)


# -- the port ----------------------------------------------------------------------------------

async def log_in(port: int, program: str, password: str, user: str = "john") -> RawCommander:
    tui = await RawCommander.connect(port)
    tui.send_raw(tui_line(1, "auth", "knockKnock"))
    nonce = NONCE.match(await tui.read_line())
    assert nonce
    tui.send_raw(tui_line(2, "auth", f'login program="{program}" username="{user}" '
                          f'password="{password_digest(nonce.group(2), password)}"'))
    assert "loggedIn" in await tui.read_line()
    return tui


@aio_test
async def test_refusals_say_why_first_and_safe_commands_are_per_actor():
    async with echo_actor("tcc") as tcc, echo_actor("toy") as toy, echo_actor("boss") as boss:
        tcc_route = legacy_route("tcc", tcc.port, options={"safe_commands": TCC_SAFE})
        boss_route = legacy_route("boss", boss.port, options={"needs_auth": False})
        async with running_hub(
                [tcc_route, legacy_route("toy", toy.port), boss_route],
                auth=AuthConfig(PASSWORDS, load_programs(DATA / "programs.json"))) as hub:
            watcher = await RawCommander.connect(hub.port, "watch.er")
            guest = await log_in(hub.auth_port, "guest", "welcome", "bob")
            # The TCC's own safe commands, not the default ones.
            for mid, command, allowed in [(3, "device status", True), (4, "show status", True),
                                          (5, "ping", False), (6, "track 1 2", False)]:
                guest.send_raw(tui_line(mid, "tcc", command))
                last = (await guest.read_until(lambda l: l.startswith(f"GUEST.bob {mid} ")
                                               and l.split()[3] in ":f"))[-1]
                assert last.startswith(f"GUEST.bob {mid} tcc :" if allowed
                                       else f"GUEST.bob {mid} hub f NoPermission="), last
            # toy has no pattern of its own: the hub-wide default.
            guest.send_raw(tui_line(7, "toy", "ping"))
            await guest.read_until(lambda l: l == "GUEST.bob 7 toy : echo=ping")
            # An actor that needs no auth (tron's boss nub) is free, and not in perms.
            guest.send_raw(tui_line(9, "boss", "expose"))
            await guest.read_until(lambda l: l == "GUEST.bob 9 boss : echo=expose")
            assert "boss" not in hub.perms.actors and "toy" in hub.perms.actors

            # An unknown program: permsTxt to it (source: the actor) and from .perms, then f.
            nobody = await log_in(hub.auth_port, "nobody", "x", "z")
            await watcher.quiet(0.2)
            nobody.send_raw(tui_line(3, "toy", "open"))
            lines = await watcher.read_until(lambda l: l.startswith("NOBODY.z 3 hub f"))
            why = 'permsTxt="Authorization table has no entry for program: NOBODY"'
            assert [l for l in lines if "CmdIn" not in l] == [
                f"NOBODY.z 3 toy w {why}", f".perms 0 perms w {why}",
                'NOBODY.z 3 hub f NoPermission="you do not have permission to command toy open"']

            # Locked by a god: refused for everyone else, with tron's text first.
            god = await log_in(hub.auth_port, "APO", "s3cret")
            god.send_raw(tui_line(3, "perms", "lock toy"))
            await god.read_until(lambda l: l == "APO.john 3 perms : ")
            guest.send_raw(tui_line(8, "toy", "status"))
            lines = await guest.read_until(lambda l: l.startswith("GUEST.bob 8 hub f"))
            assert [l for l in lines if l.startswith("GUEST.bob 8 ")] == [
                'GUEST.bob 8 toy w text="toy is locked by APO"',
                'GUEST.bob 8 hub f NoPermission="you do not have permission to command toy '
                'status"']
            god.send_raw(tui_line(4, "toy", "open"))
            await god.read_until(lambda l: l == "APO.john 4 toy : echo=open")
            # The plain commander port is not subject to permissions (as tron's 6093).
            assert (await watcher.call("toy", "open"))[-1] == "watch.er 1 toy : echo=open"
            for c in (watcher, guest, nobody, god):
                await c.close()


@aio_test
async def test_keys_for_the_hubs_own_sources_and_http_root():
    async with running_hub(http_root=("images.example", "/data/")) as hub:
        c = await RawCommander.connect(hub.port, "a.b")
        assert await c.call("keys", "getFor=hub httpRoot") == [
            "a.b 1 keys_hub i httpRoot=images.example,/data/", "a.b 1 keys : "]
        # cmds: the diagnostics written last; names the hub never wrote are unmatched.
        assert await c.call("keys", "getFor=cmds NewCmd CmdTime cmdin") == [
            'a.b 2 keys w unmatchedKeys="NewCmd","CmdTime"',
            'a.b 2 keys_cmds i CmdIn="a.b","keys","getFor=cmds NewCmd CmdTime cmdin"',
            "a.b 2 keys : "]
        everything = await c.call("keys", "getFor=cmds")
        assert everything[0].startswith('a.b 3 keys_cmds i CmdIn="a.b","keys","getFor=cmds"; '
                                        'CmdQueued=')
        assert everything[0].endswith('; CmdDone=2,":"')
        # keys: the last unmatchedKeys warning (tron caches it under keys).
        assert await c.call("keys", "getFor=keys") == [
            'a.b 4 keys_keys i unmatchedKeys=NewCmd,CmdTime', "a.b 4 keys : "]
        assert await c.call("keys", "getFor=msg") == ["a.b 5 keys : "]
        perms = await c.call("keys", "getFor=perms actors programs lockedActors")
        assert perms[0] == 'a.b 6 keys_perms i actors=hub; programs=APO,LCO,OBSERVER; lockedActors'
        assert await c.call("keys", "getFor=auth") == [
            'a.b 7 keys f keysTxt="actor auth is not connected"']
        await c.close()
