"""`bridge import-tron` on tron's real APO and LCO configurations (copied into
tests/service/data/tron-config) and the installed sdss-tron's nub modules."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bridge.cli.main import main
from bridge.service.config import load_config, parse_config
from bridge.service.tron_import import (
    NubError,
    installed_tron_dir,
    read_deployment,
    render_toml,
    translate,
    translate_nub,
)

CONFIG = Path(__file__).parent / "data" / "tron-config"
NUBS = installed_tron_dir() / "Nubs"
APO_TCC_INIT = ("show version", "show users", "show time", "show status", "show inst/full",
                "show object/full", "show axisconfig", "show focus", "axis status",
                "mir status")
SDSS_SAFE = r"^\s*(info|ping|version|status)\s*$"


def imported(location: str, **kw):
    location_config, hub_config, sources = read_deployment(CONFIG, location, NUBS)
    return translate(location, location_config, hub_config, sources, **kw)


def test_apo_every_actor_nub_with_its_settings():
    result = imported("APO")
    actors = {a.name: a for a in result.actors}
    assert list(actors) == ["mcp", "tcc", "apo", "boss", "hartmann", "apogeecal", "apogee",
                            "apogeeql", "apogeebpr", "apogeefpi", "alerts", "jaeger",
                            "fliswarm", "ecamera", "hal", "cherno"]
    tcc = actors["tcc"]
    assert (tcc.host, tcc.port, tcc.eol, tcc.mid_first, tcc.command_header) == (
        "sdss5-tcc", 2500, "\r", True, "mid")
    assert tcc.init_commands == APO_TCC_INIT  # the APO branch of tcc.py's `if isLCO`
    assert tcc.safe_commands == r"(^device )|(status$)" and tcc.needs_auth
    mcp = actors["mcp"]  # ASCIICmdEncoder() with its defaults: `cid mid text`
    assert (mcp.command_header, mcp.mid_first, mcp.eol, mcp.init_commands) == (
        "cid-mid", False, "\n", ("info",))
    assert mcp.safe_commands == SDSS_SAFE
    alerts = actors["alerts"]  # CR framing, mid first, but with the commander
    assert (alerts.eol, alerts.mid_first, alerts.command_header) == ("\r", True, "commander")
    assert not actors["boss"].needs_auth  # boss.py: needsAuth=False
    assert actors["apogeebpr"].safe_commands == r"^\s*(ping|status)\s*$"
    assert actors["cherno"].init_commands == ("ping", "version")
    hal = actors["hal"]
    assert (hal.host, hal.port, hal.command_header, hal.mid_first) == (
        "sdss5-hub.apo.nmsu.edu", 19980, "commander", False)
    # tron's SDSS-V nubs pass cidFirst=True, which tron ignores (it reads CIDfirst).
    assert any("cidFirst" in note for note in hal.notes)
    assert (result.plain_listener.nub, result.plain_listener.port) == ("client", 6093)
    assert (result.auth_listener.nub, result.auth_listener.port) == ("TUI", 9877)
    assert (result.http_host, result.http_root) == ("sdss5-hub", "/")
    assert [(u.nub, u.reason.split(" (")[0]) for u in result.untranslated] == [
        ("nclient", "replies not in tron's simple form")]


def test_lco_lists_what_tron_itself_cannot_start():
    result = imported("LCO")
    assert [a.name for a in result.actors] == [
        "apogeecal", "apogee", "apogeeql", "apogeefpi", "alerts", "jaeger", "fliswarm",
        "cherno", "hal", "hartmann"]
    reasons = {u.nub: u.reason for u in result.untranslated}
    assert set(reasons) == {"nclient", "tcc", "yao", "lamps"}
    assert "lco.json has no actors.tcc entry" in reasons["tcc"]  # it has lcotcc
    assert "no nub module tron/Nubs/yao.py" in reasons["yao"]
    assert result.http_host == "sdss5-hub.lco.cl"
    # Told where the TCC is, the LCO branch of tcc.py applies.
    result = imported("LCO", overrides={"tcc": ("sdss5-tcc", 25000)})
    tcc = next(a for a in result.actors if a.name == "tcc")
    assert tcc.init_commands == ("device status", "show version")
    assert (tcc.host, tcc.port, tcc.eol) == ("sdss5-tcc", 25000, "\r")


@pytest.mark.parametrize("location", ["APO", "LCO"])
def test_rendered_toml_is_a_valid_bridge_config_with_the_same_settings(location):
    result = imported(location, programs=str(CONFIG / "programs.json"))
    text = render_toml(result)
    config = parse_config(tomllib.loads(text))
    assert [a.name for a in config.actors] == [a.name for a in result.actors]
    for actor in result.actors:
        got = config.actor(actor.name)
        assert (got.lives, got.host, got.port, got.mid_first, got.command_header, got.eol,
                got.init_commands, got.safe_commands, got.needs_auth) == (
            "legacy", actor.host, actor.port, actor.mid_first, actor.command_header,
            actor.eol, actor.init_commands, actor.safe_commands, actor.needs_auth)
    assert (config.hub.port, config.hub.auth_port) == (6093, 9877)
    assert (config.hub.http_host, config.hub.http_root) == (result.http_host, "/")
    assert config.hub.programs == CONFIG / "programs.json"
    for u in result.untranslated:  # listed in the file, not silently dropped
        assert f"#   {u.nub}: {u.reason}" in text


def test_cli_writes_the_file_lists_untranslated_nubs_and_exits_1(tmp_path, capsys):
    out = tmp_path / "apo.toml"
    code = main(["import-tron", str(CONFIG), "--location", "apo", "-o", str(out),
                 "--host", "127.0.0.1", "--actor", "tcc=127.0.0.1:12500",
                 "--hub-port", "16093", "--auth-port", "19877"])
    assert code == 1  # nclient is not translated
    err = capsys.readouterr().err
    assert "16 actor(s), 2 listener(s)" in err and "not translated: nclient:" in err
    config = load_config(out)
    assert {a.host for a in config.actors} == {"127.0.0.1"}
    assert config.actor("tcc").port == 12500 and config.actor("mcp").port == 31012
    assert (config.hub.port, config.hub.auth_port) == (16093, 19877)
    assert config.hub.programs == CONFIG / "programs.json"
    # A programs.json beside the output is named relative to it (the file can move).
    (tmp_path / "programs.json").write_text((CONFIG / "programs.json").read_text())
    assert main(["import-tron", str(CONFIG), "--location", "APO", "-o", str(out),
                 "--programs", str(tmp_path / "programs.json")]) == 1
    assert "programs = 'programs.json'" in out.read_text()
    assert load_config(out).hub.programs == tmp_path / "programs.json"


def test_cli_refuses_bad_input_with_exit_code_2(tmp_path, capsys):
    assert main(["import-tron", str(tmp_path), "--location", "APO"]) == 2
    assert "apo.json not found" in capsys.readouterr().err
    assert main(["import-tron", str(CONFIG), "--location", "APO", "--actor", "tcc"]) == 2
    assert "expected NAME=HOST:PORT" in capsys.readouterr().err


ACTOR_NUB = '''
from tron import g, hub
import tron.Misc
name = 'x'
def start(poller):
    cfg = tron.Misc.cfg.get(g.location, 'actors', doFlush=True)[name]
    d = ASCIIReplyDecoder({decoder})
    e = ASCIICmdEncoder({encoder})
    {extra}
    nub = SocketActorNub(poller, cfg['host'], cfg['port'], name=name, encoder=e, decoder=d,
                         {nub})
    hub.addActor(nub)
'''


def nub_source(decoder="", encoder="sendCommander=True, useCID=False", nub="grabCID=True",
               extra="pass"):
    return ACTOR_NUB.format(decoder=decoder, encoder=encoder, nub=nub, extra=extra)


ACTORS_CFG = {"x": {"host": "h", "port": 1}}


@pytest.mark.parametrize("source, reason", [
    (nub_source(encoder="useTarget=True"), "useTarget=True"),
    (nub_source(encoder="sendCommanderCID=True"), "sendCommanderCID=True"),
    (nub_source(encoder="useCID=True, CIDfirst=False"), "'mid cid text'"),
    (nub_source(encoder="sendCommander=True"), "commander, cid and mid"),
    (nub_source(decoder="EOL='\\r\\n'"), "EOL='\\r\\n'"),
    (nub_source(decoder="EOL='\\r'"), "commands end with '\\n' but replies with '\\r'"),
    (nub_source(nub="grabCID='ping'"), "grabCID='ping'"),
    (nub_source(nub="initCmds=make()"), "initCmds is not a list of literal strings"),
    (nub_source(nub="safeCmds='('"), "not a valid regular expression"),
    (nub_source(nub="fancy=1"), "option(s) fancy not translated"),
    (nub_source(extra="for c in (1, 2): pass"), "statement For is not followed"),
    (nub_source(extra="if os.environ.get('X'): pass"), "'if' on something not known"),
    ("def start(poller):\n    pass\n", "adds 0 actors/listeners"),
    ("def start(poller:\n", "not valid Python"),
])
def test_nubs_it_cannot_follow_or_translate_are_refused_with_the_reason(source, reason):
    with pytest.raises(NubError) as info:
        translate_nub("x", source, "APO", ACTORS_CFG)
    assert reason in str(info.value)


def test_nub_sources_are_read_never_run(tmp_path):
    marker = tmp_path / "ran"
    source = (f"open({str(marker)!r}, 'w').write('x')\n"
              + nub_source(extra=f"open({str(marker)!r}, 'w').write('x')"))
    got = translate_nub("x", source, "APO", ACTORS_CFG)
    assert got.name == "x" and got.command_header == "commander" and not marker.exists()
    assert got.safe_commands == "(?!)" and not got.needs_auth  # tron's defaults: none, False


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tron-import"


def test_the_example_files_are_what_the_command_writes(tmp_path, monkeypatch):
    """examples/tron-import/{apo,lco}.toml, regenerated as its README says."""
    import shutil

    shutil.copytree(EXAMPLE / "tron-config", tmp_path / "tron-config")
    assert sorted(p.name for p in (EXAMPLE / "tron-config").glob("*.json")) == sorted(
        p.name for p in CONFIG.glob("*.json"))
    for name in ("apo.json", "lco.json", "hub.json", "programs.json"):
        assert (EXAMPLE / "tron-config" / name).read_text() == (CONFIG / name).read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["import-tron", "tron-config", "--location", "APO", "-o", "apo.toml"]) == 1
    assert main(["import-tron", "tron-config", "--location", "LCO", "--actor",
                 "tcc=sdss5-tcc:25000", "-o", "lco.toml"]) == 1
    for name in ("apo.toml", "lco.toml"):
        assert (tmp_path / name).read_text() == (EXAMPLE / name).read_text(), name
    lco = load_config(EXAMPLE / "lco.toml")
    assert lco.actor("tcc").init_commands == ("device status", "show version")
    assert lco.hub.programs == EXAMPLE / "tron-config" / "programs.json"
