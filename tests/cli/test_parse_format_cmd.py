"""`bridge parse` and `bridge format` run as the user runs them: the console script, real files."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "examples" / "tcc_sample.log"


def bridge(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_parse_real_log_every_line_ok_with_stable_shape():
    out = bridge("parse", "--form", "actor-midfirst", str(LOG))
    assert out.returncode == 0, out.stderr
    objs = [json.loads(l) for l in out.stdout.splitlines()]
    assert len(objs) == 143 and all(o["ok"] for o in objs)
    first = objs[0]
    assert list(first) == ["ok", "form", "commander", "mid", "cid", "actor", "code", "keywords"]
    assert (first["mid"], first["cid"], first["code"], first["commander"]) == (19, 11, "I", None)
    assert first["keywords"][0]["name"] == "ObjNetPos"
    assert first["keywords"][0]["values"][:2] == ["14.799757", "0.000000"]
    assert first["keywords"][0]["json"][:2] == [14.799757, 0.0]


def test_parse_bad_lines_give_error_objects_and_exit_zero():
    out = bridge("parse", "--form", "hub", stdin='a.b 1 tcc : ok=1\ngarbage\na.b 1 tcc i key="open\n')
    assert out.returncode == 0
    objs = [json.loads(l) for l in out.stdout.splitlines()]
    assert [o["ok"] for o in objs] == [True, False, False]
    assert objs[1]["line"] == "garbage" and objs[2]["position"] == 16
    assert objs[0]["commander"] == "a.b" and objs[0]["actor"] == "tcc" and objs[0]["cid"] is None


def test_format_is_the_inverse_of_parse_and_stable():
    parsed = bridge("parse", "--form", "actor-midfirst", str(LOG)).stdout
    once = bridge("format", stdin=parsed)
    assert once.returncode == 0, once.stderr
    again = bridge("format", stdin=bridge("parse", "--form", "actor-midfirst", stdin=once.stdout).stdout)
    assert once.stdout == again.stdout
    assert once.stdout.splitlines()[0] == (
        "19 11 I ObjNetPos=14.799757,0.000000,4734909029.03000,0.003613,0.000000,4734909029.03000")


def test_format_accepts_json_bodies_and_reports_bad_input():
    body = {"form": "hub", "commander": "APO.john", "mid": 7, "actor": "camera", "code": "i",
            "keywords": {"text": 'say "hi"', "flag": True, "n": [1, 2.5], "none": None, "s": "42"}}
    out = bridge("format", stdin=json.dumps(body) + "\n[1]\n{\"code\": 5}\n")
    assert out.stdout == 'APO.john 7 camera i text="say \\"hi\\""; flag=T; n=1,2.5; none=None; s="42"\n'
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 2
