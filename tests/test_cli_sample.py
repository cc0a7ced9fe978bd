"""The sample/spaces/show/describe commands and their one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_sample_writes_jsonl_and_summary(run_cli, tmp_path):
    out = tmp_path / "s.jsonl"
    code, stdout, err = run_cli("sample", "--space", "anynetx_c", "--flops", "360-400M", "-n", "40", "-o", out)
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert len(lines) == 40
    rec = json.loads(lines[0])
    assert rec["space"] == "anynetx_c" and 360e6 <= rec["flops"] <= 400e6
    assert "accepted 40/" in stdout and "flops" in stdout and "params" in stdout


def test_sample_is_byte_identical(run_cli, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_cli("sample", "--space", "regnetx", "--flops", "0.36-0.4G", "-n", "30", "-o", a, "--workers", "1")
    run_cli("sample", "--space", "regnetx", "--flops", "360e6-400e6", "-n", "30", "-o", b, "--workers", "2")
    assert a.read_bytes() == b.read_bytes()


def test_describe_regnetx_400mf(run_cli, ref):
    code, out, _ = run_cli("describe", "--space", "regnetx", "--set", "d=22", "w0=24", "wa=24.48", "wm=2.54", "g=16",
                           "--json")
    assert code == 0
    rec = json.loads(out)
    m = ref["models"]["RegNetX-400MF"]
    assert (rec["flops"], rec["params"], rec["acts"]) == (m["flops"], m["params"], m["acts"])
    assert [s["w"] for s in rec["stages"]] == m["ws"] and [s["d"] for s in rec["stages"]] == m["ds"]
    code, out, _ = run_cli("describe", "--space", "anynetx_a", "--set", "d=1,2,4,7", "w=24,56,152,368", "b=1", "g=8")
    assert code == 0 and "stage" in out and "flops" in out


def test_spaces_and_show(run_cli):
    code, out, _ = run_cli("spaces")
    assert code == 0 and all(n in out for n in ["anynetx_a", "anynetx_e", "regnetx", "regnety"])
    code, out, _ = run_cli("show", "anynetx_e")
    assert code == 0
    assert "nondecreasing: d" in out and "shared: b" in out and "family: anynet" in out



@pytest.fixture
def spaces_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_SPACES", str(tmp_path))
    return tmp_path


def one_line_error(code, out, err, *needles):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dse: error:")
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("files,space,needles", [
    ({"bad": "name: bad\nfamily: anynet\nparams: [1, 2\n"}, "bad", ["bad.yaml", "invalid YAML"]),
    ({"bad": "name: bad\nfamily: anynet\nparams:\n  d: {kind: int, low: 5, high: 1}\n"}, "bad",
     ["bad.yaml", "params.d", "low 5 > high 1"]),
    ({"bad": "name: bad\nfamly: anynet\n"}, "bad", ["bad.yaml", "famly", "unknown key", "family"]),
    ({"bad": "name: bad\nfamily: anynet\nparams:\n  d: {kind: uniform, low: 1, high: 2}\n"}, "bad",
     ["params.d.kind", "must be one of"]),
    ({"bad": "name: bad\nextends: anynetx_a\nconstraints:\n  - shared: zz\n"}, "bad", ["unknown parameter 'zz'"]),
    ({"p": "name: p\nextends: q\n", "q": "name: q\nextends: p\n"}, "p", ["cycle", "p -> q -> p"]),
    ({}, "anynetx_q", ["unknown space 'anynetx_q'", "closest: anynetx_"]),
])
def test_bad_space_files(run_cli, spaces_env, files, space, needles):
    for name, text in files.items():
        (spaces_env / f"{name}.yaml").write_text(text)
    out = spaces_env / "o.jsonl"
    one_line_error(*run_cli("sample", "--space", space, "--flops", "360-400M", "-n", "5", "-o", out), *needles)
    assert not out.exists()


@pytest.mark.parametrize("args,needles", [
    (["--flops", "400-360M"], ["inverted"]),
    (["--flops", "400M-400M"], ["empty"]),
    (["--flops", "360-400Q"], ["cannot parse"]),
    (["--flops", "1-2", "--max-tries", "2000"], ["no sample reached", "2000 tries", "closest seen"]),
    (["--flops", "360-400M", "-n", "0"], ["argument -n: must be in 1..1000000, got 0"]),
    (["--flops", "360-400M", "-n", "-3"], ["argument -n: must be in 1..1000000, got -3"]),
    (["--flops", "360-400M", "--bogus"], ["unrecognized arguments"]),
])
def test_bad_sample_arguments(run_cli, tmp_path, args, needles):
    out = tmp_path / "o.jsonl"
    one_line_error(*run_cli("sample", "--space", "anynetx_a", "-n", "5", "-o", out, *args), *needles)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_existing_output_is_refused_and_kept(run_cli, tmp_path):
    out = tmp_path / "s.jsonl"
    out.write_text("precious\n")
    one_line_error(*run_cli("sample", "--space", "anynetx_a", "--flops", "360-400M", "-n", "5", "-o", out),
                   "already exists", "--force")
    assert out.read_text() == "precious\n"
    code, _, _ = run_cli("sample", "--space", "anynetx_a", "--flops", "360-400M", "-n", "5", "-o", out, "--force")
    assert code == 0 and len(out.read_text().splitlines()) == 5


def test_describe_errors(run_cli):
    one_line_error(*run_cli("describe", "--space", "regnetx", "--set", "d=22", "zz=1"), "unknown parameter", "zz")
    one_line_error(*run_cli("describe", "--space", "regnetx", "--set", "d=22"), "missing value", "w0")
    one_line_error(*run_cli("describe", "--space", "regnetx", "--preset", "999mf"), "no preset")
    one_line_error(*run_cli("describe", "--space", "efficientnet_fmnist_compound", "--set", "phi=1"),
                   "compound scaling needs alpha, beta, gamma")


def test_describe_set_repeats_accumulate(run_cli):
    """`--set a=1 --set b=2` means both, as `--set a=1 b=2` does (argparse's default would keep only the last)."""
    one = run_cli("describe", "--space", "regnetx", "--set", "d=22", "w0=24", "wa=24.48", "wm=2.54", "g=16", "--json")
    rep = run_cli("describe", "--space", "regnetx", "--set", "d=22", "w0=24", "--set", "wa=24.48", "wm=2.54",
                  "--set", "g=16", "--json")
    assert one[0] == rep[0] == 0, (one[2], rep[2])
    assert json.loads(one[1])["flops"] == json.loads(rep[1])["flops"]


def test_real_process_has_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dse", "sample", "--space", "nope", "--flops", "1-2M"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "unknown space 'nope'" in r.stderr
