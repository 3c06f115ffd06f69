"""What STUI sends at connect and while running gets an answer from our hub port.

STUI (ApachePointObservatory/stui, through RO's HubConnection and opscore's actor
models) does, in this order:

* login on the authenticated port: ``1 auth knockKnock``, then ``1 auth login
  program="P" password="<sha1>" username="u" type='STUI' version='...' platform='...'``
  (RO.Comm.HubConnection; the extra arguments are Python reprs, single-quoted);
* one model per actor dictionary: every cached key without a refresh command is asked
  for with ``keys getFor=<actor> k1 ... k20`` (opscore.actor.model,
  ``NumKeysToGetAtOnce = 20``), every ``refreshCmd`` is sent once to its actor (hub's
  ``user``: ``hub status``); the Users window reads ``hub.users`` and ``hub.user``;
* the liveness probe: ``hub version`` (time limit 5 s) after 60 s without data
  (TUI/BackgroundTasks.py), and ``msg`` for the message window.

Each of these must end with ``:`` for a logged-in GUEST (a program with no actors of its
own), or STUI reports a failed refresh / a dead connection. The first test speaks the
protocol itself; the others run opscore's dispatcher and models as STUI builds them
(``tests/hub/stui_peer.py``), against our hub and against the real Tron hub.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

from bridge.hub import AuthConfig, password_digest
from bridge.hub.auth import load_programs
from bridge.protocol import keywords_to_json, parse_hub_reply
from bridge.protocol.dictionary.actorkeys_import import import_actorkeys
from bridge.protocol.dictionary.loader import check_document
from tests.hub.helpers import RawCommander, echo_actor, legacy_route, running_hub, until
from tests.support.aio import aio_test
from tests.support.ports import free_port
from tests.support.tron_hub import TronHub

DATA = Path(__file__).parent / "data"
MODELS = ("hub", "cmds", "perms", "msg", "apo")
NUM_KEYS_AT_ONCE = 20  # opscore.actor.model.NumKeysToGetAtOnce


def refresh_commands(actor: str) -> list[tuple[str, str]]:
    """``(actor, text)`` of the refresh commands opscore's Model sends for ``actor``."""
    data = check_document(import_actorkeys((DATA / "actorkeys" / f"{actor}.py").read_text()))
    cached, refresh = [], {}
    for key in data.keys:
        if key.refresh_cmd:
            refresh[(actor, key.refresh_cmd)] = None
        elif key.do_cache is not False:
            cached.append(key.name)
    commands = [("keys", f"getFor={actor} {' '.join(cached[i:i + NUM_KEYS_AT_ONCE])}")
                for i in range(0, len(cached), NUM_KEYS_AT_ONCE)]
    return commands + list(refresh)


def test_the_refresh_plan_is_what_opscore_builds():
    assert refresh_commands("hub") == [
        ("keys", "getFor=hub actors commanders users version httpRoot CmdIn NoTarget hubtxt"),
        ("hub", "status")]
    assert refresh_commands("cmds") == [
        ("keys", "getFor=cmds NewCmd CmdTime Cmdr CmdrMID CmdrCID CmdActor CmdText")]
    assert refresh_commands("perms") == [
        ("keys", "getFor=perms actors authList lockedActors programs")]
    assert refresh_commands("msg") == []  # msg is doCache=False
    batches = refresh_commands("apo")
    assert len(batches) == 2 and len(batches[0][1].split()) == 1 + NUM_KEYS_AT_ONCE


@aio_test
async def test_stui_connect_refresh_probe_and_users_window():
    passwords = {"GUEST": "welcome"}
    async with echo_actor("apo") as apo, running_hub(
            [legacy_route("apo", apo.port)], port=None, http_root=("sdss5-hub", "/"),
            auth=AuthConfig(passwords, load_programs(DATA / "programs.json"),
                            reply_eol="\r")) as hub:
        await until(lambda: "apo" in hub.actor_names(), "the link to apo")
        reader_lines: list[str] = []
        stui = await RawCommander.connect(hub.auth_port)

        async def line() -> str:
            raw = await stui.reader.readuntil(b"\r")
            reader_lines.append(raw[:-1].decode())
            return reader_lines[-1]

        stui.send_raw("1 auth knockKnock\r\n")
        nonce = re.search(r'nonce="([^"]+)"', await line())
        assert nonce
        stui.send_raw(f'1 auth login program="guest" password="'
                      f'{password_digest(nonce.group(1), "welcome")}" username="bob" '
                      f"type='STUI' version='3.0' platform='Darwin'\r\n")
        assert await line() == '.unnamed 1 auth : loggedIn; cmdrID="GUEST.bob"'

        commands = [c for actor in MODELS for c in refresh_commands(actor)]
        commands += [("hub", "version"), ("msg", "hello from STUI")]
        answers: dict[int, list[str]] = {}
        for mid, (actor, text) in enumerate(commands, start=2):
            stui.send_raw(f"{mid} {actor} {text}\r\n")
        for mid in range(2, 2 + len(commands)):
            while True:
                got = await line()
                head = got.split(" ", 4)
                if head[0] == "GUEST.bob" and head[1] == str(mid):
                    answers.setdefault(mid, []).append(got)
                    if head[3] in (":", "f"):
                        break
        ends = {commands[mid - 2]: lines[-1].split(" ", 4)[3] for mid, lines in answers.items()}
        assert set(ends.values()) == {":"}, ends

        def values(mid: int, source: str) -> dict:
            found = [parse_hub_reply(l) for l in answers[mid] if f" {source} i " in l]
            return keywords_to_json(found[0].keywords) if found else {}

        hub_mid = 2 + commands.index(refresh_commands("hub")[0])
        hub_keys = values(hub_mid, "keys_hub")
        assert hub_keys["httpRoot"] == ["sdss5-hub", "/"]  # HubModel.getBaseURL
        assert hub_keys["users"] == "GUEST.bob" and hub_keys["version"] == hub.version
        perms_mid = 2 + commands.index(refresh_commands("perms")[0])
        assert set(values(perms_mid, "keys_perms")) == {"actors", "authList", "lockedActors",
                                                         "programs"}
        status_mid = 2 + commands.index(("hub", "status"))
        assert values(status_mid, "hub")  # hub status: version first
        assert any(l.startswith(f'GUEST.bob {status_mid} hub i user="GUEST.bob","STUI","3.0",'
                                f'"Darwin"') for l in answers[status_mid])
        await stui.close()


# -- STUI's own network stack (opscore's HubConnection, dispatcher and models) ---------------

STUI_PEER = Path(__file__).parent / "stui_peer.py"


async def run_stui(port: int, program: str, password: str, actors: str) -> dict:
    """Run tests/hub/stui_peer.py against an authenticated port; its JSON report."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(STUI_PEER), "--port", str(port), "--program", program,
        "--password", password, "--username", "bob", "--dictionaries", str(DATA),
        "--actors", actors, "--timeout", "30", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


def _warnings(report: dict) -> list[str]:
    """What STUI's log would show as problems (the dispatcher also logs every reply)."""
    return sorted(m for m in report["log"] if re.match(r"(No refresh data|Refresh command|"
                                                      r"CouldNotParse)", m) or " F " in m)


@aio_test
async def test_stuis_own_stack_against_our_hub_and_real_tron(tmp_path):
    """opscore's dispatcher and models (as STUI builds them) refresh, probe and message
    through both hubs with the same outcome: no failed command, the same keyVars without
    refresh data (keys neither hub has: the hub dictionary's CmdIn, NoTarget, hubtxt, the
    cmds dictionary's New*/Cmd* keys), the same values."""
    models = "hub,cmds,perms,msg"
    tron_hub = TronHub(tmp_path / "tron", auth_port=free_port(), passwords={"GUEST": "welcome"})
    try:
        await asyncio.to_thread(tron_hub.start)
        with_tron = await run_stui(tron_hub.auth_port, "GUEST", "welcome", models)
    finally:
        await asyncio.to_thread(tron_hub.stop)
    async with running_hub(port=None, http_root=("127.0.0.1", "/"), auth=AuthConfig(
            {"GUEST": "welcome"}, load_programs(DATA / "programs.json"),
            reply_eol="\r")) as hub:
        with_ours = await run_stui(hub.auth_port, "GUEST", "welcome", models)

    for report in (with_ours, with_tron):
        assert "error" not in report, report
        assert report["cmdr"] == "GUEST.bob"
        assert report["commands"] == {"hub version": "done", "msg": "done"}, report["log"]
    both = ["No refresh data for cmds keyVars: CmdActor, CmdText, CmdTime, Cmdr, CmdrCID, "
            "CmdrMID, NewCmd",
            "No refresh data for hub keyVars: CmdIn, NoTarget, hubtxt"]
    assert _warnings(with_ours) == both
    # tron has no programs/lockedActors until someone runs perms status (difference 18).
    assert _warnings(with_tron) == sorted(
        [*both, "No refresh data for perms keyVars: lockedActors, programs"])
    ours, tron = with_ours["values"], with_tron["values"]
    assert ours["hub"]["httpRoot"] == tron["hub"]["httpRoot"] == ["127.0.0.1", "/"]
    assert ours["hub"]["users"] == tron["hub"]["users"] == ["GUEST.bob"]
    assert ours["hub"]["user"][:5] == tron["hub"]["user"][:5]
    assert set(ours["hub"]) == set(tron["hub"])
    assert ours["perms"]["programs"] == ["APO", "GUEST", "LCO", "OBSERVER", "TOY_PROGRAM"]
    assert ours["perms"]["actors"] == tron["perms"]["actors"] == ["hub"]


@aio_test
async def test_stuis_own_stack_with_an_actor_of_more_than_20_keys():
    async with echo_actor("apo") as apo, running_hub(
            [legacy_route("apo", apo.port)], port=None, http_root=("sdss5-hub", "/"),
            auth=AuthConfig({"GUEST": "welcome"}, load_programs(DATA / "programs.json"),
                            reply_eol="\r")) as hub:
        await until(lambda: "apo" in hub.actor_names(), "the link to apo")
        report = await run_stui(hub.auth_port, "GUEST", "welcome", ",".join(MODELS))
    assert "error" not in report, report
    assert report["commands"] == {"hub version": "done", "msg": "done"}, report["log"]
    assert not [w for w in _warnings(report) if not w.startswith("No refresh data")]
    assert report["values"]["hub"]["httpRoot"] == ["sdss5-hub", "/"]
    assert report["values"]["apo"] == {"version": ["1.0"]}  # the echo actor's only keyword
    assert [c for c in report["refreshCommands"] if c.startswith("keys getFor=apo")] == sorted(
        f"keys {text}" for _actor, text in refresh_commands("apo"))
