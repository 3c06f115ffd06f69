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


def test_parse_prints_one_object_per_input_line_blank_lines_included():
    text = LOG.read_text(encoding="utf-8").splitlines()
    with_blanks = "\n".join(text[:3] + ["", "   \t"] + text[3:6] + [""]) + "\n"
    out = bridge("parse", "--form", "actor-midfirst", "--strip-fields", "2", stdin=with_blanks)
    objs = [json.loads(l) for l in out.stdout.splitlines()]
    assert len(objs) == len(with_blanks.splitlines()) == 9
    assert objs[3] == {"ok": False, "error": "blank line", "position": 0, "line": ""}
    assert objs[8] == objs[3]
    assert objs[4]["ok"] is False and objs[4]["error"] == "blank line"
    assert [o["ok"] for o in objs] == [True] * 3 + [False] * 2 + [True] * 3 + [False]


def test_format_writes_a_blank_line_back_for_a_blank_line_object():
    parsed = bridge("parse", stdin="1 2 : a=1\n\n \n3 4 i b\n").stdout
    out = bridge("format", stdin=parsed)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "1 2 : a=1\n\n\n3 4 i b\n"


def test_parse_reads_lf_crlf_and_bare_cr_as_line_ends_and_bad_bytes_as_u_fffd():
    raw = b"1 2 : a=1\r3 4 : b\r\n5 6 i c=\"\xff\"\n7 8 : d"
    out = subprocess.run([sys.executable, "-m", "bridge.cli.main", "parse"], input=raw,
                         capture_output=True, timeout=60, cwd=ROOT)
    objs = [json.loads(l) for l in out.stdout.decode("utf-8").splitlines()]
    assert [o["mid"] for o in objs] == [2, 4, 6, 8]
    assert objs[2]["keywords"][0]["json"] == "\ufffd"


def test_parse_integers_beyond_64_bits_stay_exact():
    out = bridge("parse", stdin="1 2 : n=123456789012345678901234567890,-5; x=1e400; y=1e-400\n")
    (obj,) = [json.loads(l) for l in out.stdout.splitlines()]
    assert obj["keywords"][0]["json"] == [123456789012345678901234567890, -5]
    assert obj["keywords"][1]["json"] == "1e400" and obj["keywords"][2]["json"] == 0.0


def test_parse_a_log_line_without_a_reply_is_a_blank_line():
    out = bridge("parse", "--form", "actor-midfirst", "--strip-fields", "2",
                 stdin="2008-12-02 04:29:55.358Z\n2008-12-02 04:29:55.358Z 19 11 I a=1\n")
    objs = [json.loads(l) for l in out.stdout.splitlines()]
    assert objs[0]["error"] == "blank line" and objs[1]["keywords"][0]["json"] == 1


def test_parse_stops_quietly_when_the_reader_goes_away(tmp_path):
    big = tmp_path / "big.log"
    big.write_text(LOG.read_text(encoding="utf-8") * 200, encoding="utf-8")
    script = (f"set -o pipefail; {sys.executable} -m bridge.cli.main parse --form actor-midfirst "
              f"{big} 2>{tmp_path / 'err'} | head -1")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 0 and json.loads(out.stdout)["mid"] == 19
    assert (tmp_path / "err").read_text() == ""
