"""Live curves without Ray: the driver's writer (curves.jsonl, TensorBoard event files read back, no symlink
followed, a cut line healed), `dse status --curves`, and `dse sweep --dry-run` (plan, cost, no folder). The search
end-to-end test (test_search.py) checks the same files from real Ray trials."""
import json
import logging
import struct

import pytest
import yaml

import dse
from dse.run.curves import Live


def events(path):
    """(tag, step, value) of every scalar in a TensorBoard event file, read with the TFRecord framing (length, crc,
    data, crc) and the Event protobuf that tensorboardX ships, independent of dse's writer."""
    from tensorboardX.proto import event_pb2

    data, i, out = path.read_bytes(), 0, []
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        e = event_pb2.Event()
        e.ParseFromString(data[i + 12:i + 12 + n])
        i += 12 + n + 4
        out += [(v.tag, e.step, v.simple_value) for v in e.summary.value]
    return out


def point(sid, repeat=0):
    return {"sample": {"id": sid, "space": "anynetx_a"}, "repeat": repeat}


def result(epoch, val):
    return {"epoch": epoch, "val_error": val, "train_error": val + 1, "train_loss": 2.0 / epoch, "lr": 0.1 / epoch,
            "time": 0.5, "final": False, "time_total_s": 1.0}


def fill(out):
    """Two trials as the driver sees them: a model (3 epochs) and its noise repeat (2 epochs); a failed report."""
    live = Live(out)
    for e, v in ((1, 80.0), (2, 60.0), (3, 40.0)):
        live.epoch(point("aaa"), result(e, v))
    for e, v in ((1, 85.0), (2, 70.0)):
        live.epoch(point("aaa", 1), result(e, v))
    live.epoch(point("bbb"), {"final": True, "row": "{}"})  # a failed trial's last word: no epoch, no line
    live.close_all()
    return live


def test_curves_lines_and_tensorboard_events_read_back(tmp_path):
    fill(tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "curves.jsonl").read_text().splitlines()]
    assert [(r["key"], r["epoch"], r["val_error"]) for r in lines] == [
        ("aaa", 1, 80.0), ("aaa", 2, 60.0), ("aaa", 3, 40.0), ("aaa:1", 1, 85.0), ("aaa:1", 2, 70.0)]
    assert all(r["space"] == "anynetx_a" and r["lr"] == pytest.approx(0.1 / r["epoch"]) for r in lines)
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["aaa", "aaa:1"]
    ev = [x for f in sorted((tmp_path / "tb" / "aaa").iterdir()) for x in events(f)]
    assert sorted((s, v) for t, s, v in ev if t == "val_error") == [(1, 80.0), (2, 60.0), (3, 40.0)]
    assert sorted((s, v) for t, s, v in ev if t == "train_loss") == [(1, 2.0), (2, 1.0), (3, pytest.approx(2 / 3))]
    assert {t for t, _, _ in ev} == {"val_error", "train_error", "train_loss", "lr", "epoch_time"}
    df = dse.load_curves(tmp_path)
    assert list(df["key"]) == ["aaa"] * 3 + ["aaa:1"] * 2 and list(df["repeat"]) == [0, 0, 0, 1, 1]


def test_a_retried_epoch_keeps_its_last_line_and_a_cut_line_is_healed(tmp_path):
    fill(tmp_path)
    with open(tmp_path / "curves.jsonl", "a") as f:
        f.write('{"key": "aaa", "epo')  # a driver killed mid-line
    live = Live(tmp_path, tensorboard=False)
    live.epoch(point("aaa"), result(3, 39.0))  # the trial retried its last epoch
    df = dse.load_curves(tmp_path)
    assert len(df) == 5 and df[(df.key == "aaa") & (df.epoch == 3)]["val_error"].tolist() == [39.0]


def test_curves_never_follow_a_symlink(tmp_path, caplog):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "curves.jsonl").symlink_to(target)
    with caplog.at_level(logging.WARNING):
        Live(run, tensorboard=False).epoch(point("aaa"), result(1, 50.0))
    assert target.read_text() == "keep\n" and "live curves stopped" in caplog.text


def sweep_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "plan.jsonl").write_text('{"id": "aaa", "space": "anynetx_a"}\n{"id": "bbb", "space": "anynetx_a"}\n')
    fill(run)
    return run


def test_status_curves_table_json_and_pdf(tmp_path, run_cli):
    run = sweep_folder(tmp_path)
    code, text, err = run_cli("status", run, "--curves")
    assert code == 0, err
    head, cols, *rows = text.splitlines()
    assert "2 trials, 5 epochs recorded" in head and cols.split() == ["key", "space", "epoch", "val_error", "best",
                                                                       "train_loss", "lr", "curve"]
    assert rows[0].split()[:5] == ["aaa:1", "anynetx_a", "2", "70", "70"]  # latest first
    assert rows[1].split()[:5] == ["aaa", "anynetx_a", "3", "40", "40"] and rows[1].split()[-1] == "▇▅▄"
    code, text, _ = run_cli("status", run, "--curves", "--json")
    assert [r["val_error"] for r in json.loads(text)] == [80, 60, 40, 85, 70]
    code, _, _ = run_cli("status", run, "--curves", "-o", tmp_path / "c.pdf")
    assert code == 0 and (tmp_path / "c.pdf").read_bytes()[:5] == b"%PDF-"
    code, _, err = run_cli("status", tmp_path, "--curves")
    assert code == 1 and err == f"dse: error: {tmp_path}: not a sweep folder (no plan.jsonl)\n"


EXP = {"name": "tiny", "n": 3, "flops": "-40M", "seed": 0, "data": {"name": "digits", "res": 8},
       "train": {"epochs": 2, "batch_size": 256, "lr": 0.1, "warmup": 0}, "trial": {"cpus": 1},
       "noise": {"models": 2, "seeds": 3}}


def test_dry_run_prints_the_plan_and_a_cost_and_makes_nothing(tmp_path, run_cli):
    (tmp_path / "wide.yaml").write_text("name: wide\nextends: anynetx_a\nconstraints:\n  - expr: 'w[3] >= 2 * w[0]'\n")
    exp = tmp_path / "tiny.yaml"
    exp.write_text(yaml.safe_dump({**EXP, "spaces": ["anynetx_e", str(tmp_path / "wide.yaml")]}))
    recs = dse.plan.plan(dse.experiment.load(exp))  # a sweep's plan honours the expression constraint
    assert len(recs) == 6 and all(r["config"]["w"][3] >= 2 * r["config"]["w"][0] for r in recs[3:])
    new = tmp_path / "never"
    code, text, err = run_cli("sweep", exp, "--dry-run", "--out", new)
    assert code == 0, err
    assert not new.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml", "wide.yaml"]
    lines = text.splitlines()
    assert lines[0] == f"dry run of tiny (nothing trained, no folder made; it would write {new}):"
    tried = {s.space: s.tried for s in (dse.sample(str(x), 3, flops=(None, 40e6)) for x in
                                         ("anynetx_e", tmp_path / "wide.yaml"))}
    assert lines[1].split()[:2] == ["anynetx_e", "3"] and f"accepted 3 of {tried['anynetx_e']} draws" in lines[1]
    assert lines[2].split()[:2] == ["wide", "3"] and f"accepted 3 of {tried['wide']} draws" in lines[2]
    assert lines[3] == "  noise floor: 2 models x 2 extra seeds = 4 trials (chosen once the primaries are done)"
    assert lines[4].startswith("  total: 10 trials x 2 epochs, 1 CPU each")
    assert "timed in-process" in lines[5] and lines[6].startswith("  estimate: about")
    # a previous run's rows give the cost instead: the median wall of its finished trials
    run = tmp_path / "old"
    run.mkdir()
    (run / "results.jsonl").write_text("".join(json.dumps({"id": r["id"], "key": r["id"], "status": "ok",
                                                           "wall": w}) + "\n" for r, w in zip(recs, (5, 7, 30))))
    code, text, _ = run_cli("sweep", exp, "--dry-run", "--out", run)
    assert code == 0 and "the median finished trial of" in text and "took 7s (3 trials)" in text
    assert "3 already done" in text and "estimate: about" in text


def test_the_writer_pickles_with_trials_open_and_an_arm_trial_closes(tmp_path):
    """Ray Tune pickles the driver's callbacks when a sweep starts its second Tuner (the noise repeats): a writer
    with open event files must still pickle (their queue cannot), and an arm trial's writer closes by its own key."""
    import pickle

    live = Live(tmp_path)
    p = {**point("aaa"), "arm": "rrc"}
    live.epoch(p, result(1, 50.0))
    assert list(live.writers) == ["aaa@rrc"]
    copy = pickle.loads(pickle.dumps(live))
    assert copy.writers == {} and copy.path == live.path
    live.close("aaa@rrc")
    assert live.writers == {}
