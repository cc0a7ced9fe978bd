"""Issue 18, hostile cases: no writes outside the folder the user named (links, ids), bounded inputs, a sweep done
only when its planned trials are, no traceback on a closed or full stdout, and finished messages. No Ray here."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import dse
from dse.errors import DseError
from dse.results import read_rows
from dse.run.sweep import Counts, Driver, prepare

ROOT = Path(__file__).resolve().parents[1]
EXP = {"name": "h", "spaces": ["anynetx_a"], "n": 2, "flops": "-40M", "seed": 0,
       "data": {"name": "digits", "res": 8}, "train": {"epochs": 1, "batch_size": 256, "lr": 0.1, "warmup": 0}}


def one_line_error(code, out, err, *needles):
    assert code == 1, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dse: error:"), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def done_folder(tmp_path, rows=True, **change):
    """A sweep folder as a finished sweep leaves it (plan, experiment, one row per planned trial), made without Ray."""
    f = tmp_path / "h.yaml"
    f.write_text(yaml.safe_dump({**EXP, **change}))
    exp = dse.experiment.load(f)
    run = tmp_path / "run"
    run.mkdir()
    recs = dse.plan.plan(exp)
    (run / "plan.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run / "experiment.yaml").write_text(yaml.safe_dump(exp.to_dict()))
    made = [{"id": r["id"], "key": r["id"], "repeat": 0, "space": r["space"], "status": "ok", "error": 50.0 + i,
             "best_error": 50.0 + i, "errors": [50.0 + i]} for i, r in enumerate(recs)]
    if rows:
        (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in made))
    return f, exp, run, recs, made


# ---------------------------------------------------------------- 1. writes stay inside the folder

@pytest.mark.parametrize("name", [".lock", "results.jsonl", "status.json", "errors.log", "weights"])
def test_resume_refuses_a_folder_with_a_link_and_writes_nothing(tmp_path, run_cli, name):
    f, _, run, _, made = done_folder(tmp_path)
    target = tmp_path / "elsewhere"
    if name == "weights":
        target.mkdir()
    else:
        target.write_text("".join(json.dumps(r) + "\n" for r in made) if name == "results.jsonl" else "keep\n")
        (run / name).unlink(missing_ok=True)
    before = sorted(p.name for p in target.iterdir()) if target.is_dir() else target.read_text()
    (run / name).symlink_to(target)
    one_line_error(*run_cli("sweep", f, "--out", run, "--resume"), str(run / name), "is a symbolic link")
    assert (sorted(p.name for p in target.iterdir()) if target.is_dir() else target.read_text()) == before
    assert not (run / "results.parquet").exists()


def test_no_writer_follows_a_link(tmp_path):
    from dse.io import FolderLock, append_line, write_atomic
    from dse.models.export import save_weights
    from dse.results import ResultsLog

    target, rows = tmp_path / "target", tmp_path / "rows.jsonl"
    target.write_text("keep\n")
    rows.write_text("")
    outside = tmp_path / "outside"
    outside.mkdir()
    d = tmp_path / "run"
    d.mkdir()
    for name in (".lock", "errors.log", "status.json"):
        (d / name).symlink_to(target)
    (d / "results.jsonl").symlink_to(rows)
    (d / "weights").symlink_to(outside)
    rec = dse.sample("anynetx_a", 1, flops=(None, 40e6))[0].to_dict()
    for write in (lambda: FolderLock(d), lambda: ResultsLog(d / "results.jsonl").append({"id": "a", "key": "a"}),
                  lambda: append_line(d / "errors.log", "x\n"), lambda: write_atomic(d / "status.json", "{}", True),
                  lambda: save_weights(d / "weights" / f"{rec['id']}.pt", rec, {})):
        with pytest.raises(DseError, match="is a symbolic link"):
            write()
    assert target.read_text() == "keep\n" and rows.read_text() == "" and not list(outside.iterdir())


def test_a_row_id_is_never_a_path(tmp_path, run_cli, monkeypatch):
    from dse.models.export import save_weights

    _, _, run, recs, made = done_folder(tmp_path)
    bad = "../../x/escaped"
    (run / "weights").mkdir()
    (tmp_path / "x").mkdir()
    save_weights(tmp_path / "x" / "escaped.pt", recs[0], {})  # what run/weights/<bad>.pt points at
    (run / "plan.jsonl").write_text("".join(json.dumps({**r, "id": bad if i == 0 else r["id"]}) + "\n"
                                            for i, r in enumerate(recs)))
    (run / "results.jsonl").write_text("".join(json.dumps({**r, "id": bad, "key": bad} if i == 0 else r) + "\n"
                                               for i, r in enumerate(made)))
    monkeypatch.chdir(tmp_path / "run" / "weights")  # the default output name <id>.pt would land in tmp_path/x
    one_line_error(*run_cli("export", run, "--best"), f"the row of trial '{bad}'", "not 12 hexadecimal digits")
    one_line_error(*run_cli("export", run, "--id", bad), f"--id: '{bad}' is not a sample id")
    one_line_error(*run_cli("fixres", run, "--test-sizes", "8", "--id", bad), f"'{bad}' is not a sample id")
    with pytest.raises(DseError, match="'../x' is not a sample id"):
        dse.create_model(f"{run}:../x")
    with pytest.raises(DseError, match=r"plan.jsonl:1: '\.\./\.\./x/escaped' is not a sample id"):
        prepare(None, run, resume=True)  # Ray would name a trial folder after it
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["escaped.pt"]


# ---------------------------------------------------------------- 2. bounded inputs

@pytest.mark.parametrize("change, needle", [
    ("wm=3.5", "wm=3.5 is outside its range 1.5..3"),
    ("d=1000000000", "d=1000000000 is outside its range 1..63"),
    ("wm=inf", "wm=inf is not a finite number"),
    ("g=24", "g=24 is not a power of two in 1..32"),
    ("w0=25", "w0=25 is not a multiple of 8 (its quantum)"),
])
def test_describe_refuses_values_outside_the_space(run_cli, change, needle):
    base = {"d": "22", "w0": "24", "wa": "24.48", "wm": "2.54", "g": "16"}
    k, v = change.split("=")
    sets = [f"{n}={v if n == k else x}" for n, x in base.items()]
    one_line_error(*run_cli("describe", "--space", "regnetx", "--set", *sets), f"space regnetx: {needle}")
    one_line_error(*run_cli("describe", "--space", "regnetx", "--preset", "400mf", "--set", change), needle)


def test_show_marks_presets_outside_the_space_and_a_child_lists_its_own(run_cli):
    code, out, _ = run_cli("show", "regnetx")
    lines = {ln.split(":")[0].strip(): ln for ln in out.splitlines() if ln.startswith("  ") and "{d:" in ln}
    assert code == 0 and len(lines) == 12
    assert lines["32gf"].endswith("# outside the sampled space: w0=320 is outside its range 8..248; g=168 is outside "
                                  "its range 1..32")
    assert lines["600mf"].endswith("# outside the sampled space: g=24 is not a power of two in 1..32")
    assert "outside" not in lines["200mf"] and "outside" not in lines["800mf"]
    code, out, _ = run_cli("show", "regnetx_pycls")  # d 12-28, wm 2-3, and the parent's g in 1..32
    assert code == 0 and [ln.split(":")[0].strip() for ln in out.splitlines() if "{d:" in ln] == \
        ["200mf", "400mf", "800mf"]
    assert "not listed: 9 inherited presets" in out
    assert sorted(dse.load("regnetx_pycls").presets) == ["200mf", "400mf", "800mf"]


def test_numbers_too_large_for_a_float_are_one_line(run_cli, tmp_path):
    one_line_error(*run_cli("sample", "--space", "anynetx_a", "--flops", "1e400-2e400", "-n", "1"),
                   "--flops: bounds must be finite numbers, got '1e400-2e400'")
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump({**EXP, "flops": "1e400-2e400"}))
    one_line_error(*run_cli("sweep", f, "--out", tmp_path / "run"), str(f), "flops: bounds must be finite")
    one_line_error(*run_cli("scale", "apply", "--phi", "0..100000"),
                   "phi=100000 scales beyond what dse builds", "phi <= 20")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, needle", [
    ("[" * 5000, "invalid YAML"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "not a text file (byte 0 is not UTF-8)"),
    ("name: bad\nextends: anynetx_a\nstages: 4\nstages: 3\n", "line 4 invalid YAML (duplicate key 'stages'"),
], ids=["nested", "binary", "duplicate-key"])
def test_yaml_that_is_not_a_space_or_experiment_is_one_line(run_cli, tmp_path, text, needle):
    for kind, f, args in (("space", tmp_path / "s.yaml", ["describe", "--space"]),
                          ("experiment", tmp_path / "e.yaml", ["sweep"])):
        f.write_bytes(text if isinstance(text, bytes) else text.encode())
        one_line_error(*run_cli(*args, f, *(["--out", tmp_path / "run"] if kind == "experiment" else [])),
                       str(f), needle)
    f.write_text("name: h\nspaces: [anynetx_a]\nn: 1\nn: 2\n")
    one_line_error(*run_cli("sweep", f), "line 4 invalid YAML (duplicate key 'n'")
    assert not (tmp_path / "run").exists()


def test_errors_that_are_not_percentages_are_set_aside(run_cli, tmp_path, caplog):
    rows = [{"id": f"{i:012x}", "space": "anynetx_a" if i % 2 else "anynetx_e", "status": "ok", "error": 20.0 + i}
            for i in range(20)]
    rows += [{"id": f"{i:012x}", "space": "anynetx_a", "status": "ok", "error": e}
             for i, e in zip(range(20, 24), (-50.0, 170.0, 1e308, 30.0))]
    rows[-1]["errors"] = [40.0, 1e308, 30.0]
    f = tmp_path / "r.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    df = dse.load_results(f)
    assert len(df) == 20 and df["error"].between(0, 100).all()
    assert [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()] == \
        [f"{f}: 4 rows set aside: errors outside [0, 100] (error, best_error, best_test_error and the per-epoch "
         "errors are percentages)"]
    code, out, err = run_cli("plot", "edf", f, "-o", tmp_path / "edf.png")
    assert code == 0 and (tmp_path / "edf.png").exists(), err
    code, out, err = run_cli("compare", f)
    assert code == 0 and "nan" not in out.lower(), out


def test_over_long_paths_are_one_line_and_leave_nothing(run_cli, tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump(EXP))
    one_line_error(*run_cli("sweep", f, "--out", tmp_path / "runs" / ("a" * 300)), "file name too long",
                   "a name of 300 bytes; at most 255")
    deep = tmp_path / "runs" / "/".join(["b" * 200] * 21) / "s.jsonl"
    one_line_error(*run_cli("sample", "--space", "anynetx_a", "-n", "1", "-o", deep), "file name too long",
                   "at most 4095")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.yaml"]


# ---------------------------------------------------------------- 3. done means every planned trial has a row

def test_a_space_listed_twice_is_refused(tmp_path, run_cli):
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump({**EXP, "spaces": ["anynetx_a", "anynetx_a"]}))
    one_line_error(*run_cli("sweep", f, "--out", tmp_path / "run"), "spaces: anynetx_a listed twice")
    assert not (tmp_path / "run").exists()
    plan = dse.plan.plan(dse.experiment.parse(EXP))
    with pytest.raises(DseError, match=f"model {plan[0]['id']} \\(anynetx_a\\) is planned twice"):
        dse.plan.check(plan + plan[:1], "plan.jsonl")


def test_a_foreign_row_is_set_aside_never_done(tmp_path, caplog):
    _, _, run, recs, made = done_folder(tmp_path)
    foreign = {**made[0], "id": "0123456789ab", "key": "0123456789ab", "error": 1.0}
    with open(run / "results.jsonl", "a") as fh:
        fh.write(json.dumps(foreign) + "\n")
    text = dse.status.status(run)
    assert "2/2 done, 0 failed, 0 to go" in text and "1 row(s) set aside" in text, text
    df = dse.load_results(run)
    assert sorted(df["id"]) == sorted(r["id"] for r in recs)
    assert any("1 row set aside: their trials are not in" in r.getMessage() for r in caplog.records)
    ex = Driver.__new__(Driver)  # the driver's count on resume, without Ray
    ex.results, ex.counts = dse.results.ResultsLog(run / "results.jsonl"), Counts(total=2)
    ex.count_done({r["id"] for r in recs})
    assert (ex.counts.done, ex.counts.failed) == (2, 0)


# ---------------------------------------------------------------- 4. stdout closed or full

def test_closed_or_full_stdout_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dse", "sample", "--space", "anynetx_a", "--flops", "-40M", "-n", "300", "-o", "-",
           "-q", "--workers", "1"]
    closed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=False, stdout=None, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: os.close(1))
    with open("/dev/full", "w") as full:
        filled = subprocess.run(cmd, cwd=ROOT, env=env, stdout=full, stderr=subprocess.PIPE, text=True)
    for r, msg in ((closed, "dse: error: standard output is closed; redirect it to a file or to /dev/null"),
                   (filled, "dse: error: cannot write to standard output (No space left on device)")):
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [msg], r.stderr


# ---------------------------------------------------------------- 5. messages

def test_messages_say_what_is_wrong_at_once(run_cli, tmp_path):
    from dse.analysis.compare import verdict

    line = verdict("a", "b", 12, 12, 0.0, 0.0, 0.0, 1.0, metric="error")  # every error equal: no spread
    assert line.endswith("so the n that would detect a 2-point shift is unknown too; noise floor not measured"), line
    _, _, run, _, _ = done_folder(tmp_path)
    d = tmp_path / "dir"
    d.mkdir()
    one_line_error(*run_cli("export", run, "--best", "-o", d), f"{d}: is a folder, not a file")
    one_line_error(*run_cli("describe", "--space", f"{d}/"), "is a folder, not a space file")
    one_line_error(*run_cli("sweep", d), f"{d}: is a folder, not an experiment file")
    edited = dse.experiment.parse({**EXP, "seed": 1})
    with pytest.raises(DseError, match=r"\(seed differs\)"):
        prepare(edited, run, resume=True)
    assert read_rows(run / "results.jsonl")
