"""The papers' claims as experiments: arms (training variants of one population, or one network each) in the plan
and the table, paired verdicts (coverage on synthetic paired data), FixRes's paired size and fine-tuning summary,
progressive learning's time to the fixed arm's error, and what FixRes fine-tuning may change. Expected values come
from the definitions (paired differences, cumulative epoch times) worked by hand or by numpy, never from the code
under test."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dse.analysis import fixres, progressive
from dse.analysis.compare import arm_pairs, compare, paired_ci, verdict_lines
from dse.errors import DseError
from dse.run.experiment import load, parse

ROOT = Path(__file__).resolve().parents[1]


def test_paired_interval_detects_a_known_shift_and_covers_it():
    """300 replicates of 12 models whose error under B is their error under A minus 1.5 plus N(0, 0.8) noise (the
    models themselves spread with sd 8, which pairing removes): the paired 95% interval holds 1.5 in >= 90% of them
    and excludes 0 in most; with no shift it holds 0 in >= 90%."""
    rng = np.random.default_rng(7)
    hold, detect, hold0 = 0, 0, 0
    for r in range(300):
        a = rng.normal(30, 8, 12)
        b = a - 1.5 + rng.normal(0, 0.8, 12)
        lo, hi = paired_ci(a - b, n_boot=1000, seed=r)
        hold += lo <= 1.5 <= hi
        detect += lo > 0
        c = a + rng.normal(0, 0.8, 12)
        lo0, hi0 = paired_ci(a - c, n_boot=1000, seed=r)
        hold0 += lo0 <= 0 <= hi0
    assert hold / 300 >= 0.90 and hold0 / 300 >= 0.90 and detect / 300 > 0.95


def arms_table(shift=-1.5, n=12, seeds=1, rng=None):
    """Two arms that trained the same n models (and seeds); arm b's error = a's + shift + small noise."""
    rng = rng or np.random.default_rng(0)
    base = rng.normal(30, 8, (n, seeds))
    rows = []
    for arm, err in (("a", base), ("b", base + shift + rng.normal(0, 0.3, base.shape))):
        for i in range(n):
            for k in range(seeds):
                rows.append({"id": f"{i:012x}", "repeat": k, "arm": arm, "status": "ok", "space": "s",
                             "error": float(err[i, k])})
    return pd.DataFrame(rows)


def test_arms_compare_paired_and_say_so():
    df = arms_table()
    cmp = compare(df)  # a table of arms is compared by arm
    (row,) = cmp.to_dict("records")
    diffs = (df[df.arm == "a"].error.to_numpy() - df[df.arm == "b"].error.to_numpy())
    assert row["paired"] and row["n_a"] == row["n_b"] == 12
    assert row["delta_mean"] == pytest.approx(diffs.mean())
    assert row["verdict"].startswith("b is better than a:") and "n = 12 paired" in row["verdict"]
    lines = verdict_lines(arms_table(n=4))
    assert "TOO SMALL FOR CONCLUSIONS: 4 units" in lines[1] and "fewer than 10 pairs" in lines[2]


def test_arms_of_different_networks_are_unpaired_within_their_group():
    rng = np.random.default_rng(1)
    rows = [{"id": f"{hash(arm) % 16 ** 12:012x}", "repeat": k, "arm": arm, "status": "ok", "space": "s",
             "error": float(rng.normal(m, 0.5))}
            for arm, m in (("width@2x", 20), ("compound@2x", 18), ("width@4x", 17), ("compound@4x", 15))
            for k in range(10)]
    df = pd.DataFrame(rows)
    cmp = compare(df)
    assert [(r.a, r.b) for r in cmp.itertuples()] == [("width@2x", "compound@2x"), ("width@4x", "compound@4x")]
    assert not cmp["paired"].any() and (cmp["n_a"] == 10).all() and (cmp["interval"] == "welch t").all()
    from scipy.stats import ttest_ind
    a, b = (df[df.arm == x].error.to_numpy() for x in ("width@2x", "compound@2x"))
    want = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)  # scipy's Welch interval
    assert (cmp["ci_low"][0], cmp["ci_high"][0]) == pytest.approx((want.low, want.high))
    assert cmp["verdict"][0].startswith("compound@2x is better than width@2x") and "10/10 seeds (Welch t)" in \
        cmp["verdict"][0]
    from dse.analysis.edf import summary
    tab = summary(df, by="arm")  # the seeds are these arms' units: the summary counts and averages them all
    assert (tab["n"] == 10).all() and tab.loc["width@2x", "mean"] == pytest.approx(a.mean())
    from dse.analysis.plots import edf_figure
    ax = edf_figure(df, by="arm").axes[0]  # its curves, legend and title count the same units
    assert ax.get_title().startswith("error EDF of 40 runs (networks x seeds), one curve per arm")
    assert all("(n=10," in t.get_text() for t in ax.get_legend().get_texts())
    few = compare(df.groupby("arm").head(4))  # 4 seeds: below MIN_SEEDS (5)
    assert "too small for conclusions (fewer than 5 seeds per arm)" in few["verdict"][0]
    assert arm_pairs(["fixed", "progressive", "progressive_fixed_reg"]) == [
        ("fixed", "progressive"), ("fixed", "progressive_fixed_reg"), ("progressive", "progressive_fixed_reg")]


def fixres_table():
    """12 models trained at 16 px, tested at 16/20/24: 20 px is 1 point better for every model (24 px 1 worse);
    fine-tuning at 20 px gains 2."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(12):
        e = float(rng.normal(25, 3))
        rows.append({"id": f"{i:012x}", "repeat": 0, "status": "ok", "space": "s", "error": e, "train_res": 16,
                     "test_errors": {"16": e, "20": e - 1.0, "24": e + 1.0},
                     "tuned_errors": {"16": e - 0.1, "20": e - 2.0, "24": e + 0.5}})
    return pd.DataFrame(rows)


def test_fixres_summary_is_paired_over_models():
    s = fixres.summary(fixres_table())
    assert s["train_size"] == 16 and [x["size"] for x in s["sizes"]] == [16, 20, 24]
    d = {x["size"]: x for x in s["sizes"]}
    assert d[16]["delta"] == 0 and d[20]["delta"] == pytest.approx(-1.0) and d[24]["delta"] == pytest.approx(1.0)
    assert d[20]["ci_low"] == pytest.approx(-1.0) and d[20]["ci_high"] == pytest.approx(-1.0)  # the same gain for all
    assert d[20]["n"] == 12 and s["finetune"]["size"] == 20 and s["finetune"]["delta"] == pytest.approx(-2.0)
    lines = fixres.lines(fixres_table(), noise=0.7)
    assert lines[0] == ("testing at 20 px (the best of 2 sizes) beats 16 px: -1.0 points [-1.0, -1.0], n = 12 "
                        "models, noise floor 0.7 points")
    assert lines[1].startswith("fine-tuning the classifier and BN at 20 px (the best of 3) beats testing at 16 px "
                               "without it: -2.0 points")
    # both adapted: (e - 2.0) - (e - 0.1) for every model
    assert (s["adapted"]["size"], s["adapted"]["delta"]) == (20, pytest.approx(-1.9))
    assert lines[2] == ("fine-tuned at both sizes, testing at 20 px beats 16 px: -1.9 points [-1.9, -1.9], n = 12 "
                        "models, noise floor 0.7 points")
    with pytest.raises(DseError, match="no test_errors"):
        fixres.summary(fixres_table().drop(columns="test_errors"))


def test_progressive_time_to_the_fixed_error():
    """Unit 0: fixed ends at 20% after 4 epochs of 10 s; the progressive arm's epochs take 4, 6, 8, 10 s and reach
    20% at its third epoch: 18 s of 40, ratio 0.45; total 28 s, 0.7."""
    rows = []
    for i in range(10):
        rows.append({"id": f"{i:012x}", "repeat": 0, "arm": "fixed", "status": "ok", "space": "s", "error": 20.0,
                     "errors": [50, 35, 25, 20.0], "epoch_times": [10, 10, 10, 10], "schedule": None})
        rows.append({"id": f"{i:012x}", "repeat": 0, "arm": "progressive", "status": "ok", "space": "s",
                     "error": 19.0, "errors": [60, 30, 20.0, 19], "epoch_times": [4, 6, 8, 10],
                     "schedule": [{"res": 8}, {"res": 10}, {"res": 12}, {"res": 14}]})
    df = pd.DataFrame(rows)
    t = progressive.times(df, "progressive", "fixed")
    assert t["time_to_target"].tolist() == [18.0] * 10 and t["total_time"].tolist() == [28.0] * 10
    (line,) = progressive.lines(df)
    assert line == ("progressive vs fixed: reached fixed's final error in 10 of 10 paired runs, time to it 0.45x the "
                    "fixed arm's training [0.45, 0.45] (median ratio); total time 0.70x [0.70, 0.70] (validation "
                    "included); noise floor not measured")
    # with training-only times (validation left out: 1 s per epoch here), those are used and said
    df["train_times"] = [[t - 1 for t in ts] for ts in df["epoch_times"]]
    t = progressive.times(df, "progressive", "fixed")
    assert t["time_to_target"].tolist() == [15.0] * 10 and t["fixed_time"].tolist() == [36.0] * 10
    assert progressive.lines(df, noise=0.6)[0].endswith(
        "time to it 0.42x the fixed arm's training [0.42, 0.42] (median ratio); total time 0.67x [0.67, 0.67] "
        "(training steps only); noise floor 0.6 points")


def test_finetune_changes_only_the_classifier_and_the_named_bn_statistics():
    import dse
    from dse.data import load_data
    from dse.train.fixres import finetune

    d = load_data("digits", res=8)
    s = dse.sample("anynetx_a", 1, flops=(None, 40e6), seed=0, workers=1)[0]
    m = dse.build(s.config, res=8, classes=10, in_ch=1)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    finetune(m, d, 12, epochs=1, seed=0)
    changed = {k for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert {"head.fc.weight", "head.fc.bias"} <= changed
    bn_stats = {k for k in changed if k.startswith("s4.") and k.endswith(("running_mean", "running_var",
                                                                          "num_batches_tracked"))}
    assert bn_stats and changed == {"head.fc.weight", "head.fc.bias"} | bn_stats


def test_arms_parse_and_refuse():
    e = parse({"name": "x", "spaces": ["anynetx_a"], "n": 2, "flops": "-40M", "seeds": 2, "arms": [
        {"name": "pad"}, {"name": "rrc", "train": {"augment": {"crop": "rrc"}}},
        {"name": "off", "progressive": None}]})
    assert e.arm("rrc").train.augment.crop == "rrc" and e.arm("pad").train.augment.crop == "pad"
    assert parse(e.to_dict()) == e
    for arms, match in [([{"name": "a"}, {"name": "a"}], "the name 'a' is given twice"),
                        ([{"name": "a", "train": {"lr": -1}}], r"arms\[0\] \(a\): train.lr: must be a positive"),
                        ([{"name": "a", "trainn": {}}], "arms\\[0\\].trainn: unknown key \\(did you mean 'train'"),
                        ([{"name": "a/b"}], "arms\\[0\\].name"), ([{"name": "a", "set": {"w0": 8}}], "need a space")]:
        with pytest.raises(DseError, match=match):
            parse({"name": "x", "spaces": ["anynetx_a"], "n": 2, "flops": "-40M", "arms": arms})
    with pytest.raises(DseError, match="seeds and noise: give one"):
        parse({"name": "x", "spaces": ["anynetx_a"], "n": 2, "seeds": 2, "noise": {"models": 2}})


def test_a_plan_of_arms_pairs_models_and_seeds():
    from dse.run.plan import plan, points, trial_seed
    from dse.results import trial_key

    e = parse({"name": "x", "spaces": ["anynetx_a"], "n": 3, "flops": "-40M", "seeds": 2, "arms": [
        {"name": "pad"}, {"name": "rrc", "train": {"augment": {"crop": "rrc"}}},
        {"name": "b0@x", "space": "efficientnet", "set": {"width": 1.0, "depth": 1.0, "res": 224}}]})
    recs = plan(e)
    pts = points(e, recs)
    assert len(recs) == 4 and len(pts) == 3 * 2 * 2 + 1 * 2
    keys = [trial_key(p["sample"]["id"], p["repeat"], p["arm"]) for p in pts]
    assert len(set(keys)) == len(keys)
    by = {(p["arm"], p["repeat"]): [] for p in pts}
    for p in pts:
        by[(p["arm"], p["repeat"])].append(p["sample"]["id"])
    assert by[("pad", 0)] == by[("rrc", 0)] == by[("pad", 1)] and len(by[("b0@x", 0)]) == 1
    assert trial_seed(0, recs[0]["id"], 1) != trial_seed(0, recs[0]["id"], 0)  # seeds differ by repeat, not by arm


def test_fixres_control_is_a_paired_difference_in_differences():
    """rrc's error changes by -1 from 16 to 20 px, pad's by +2, for every model: the control line says -3 exactly."""
    a = fixres_table().assign(arm="rrc")
    b = a.assign(arm="pad", test_errors=[{"16": d["16"], "20": d["16"] + 2.0, "24": d["16"] + 4.0}
                                        for d in a["test_errors"]])
    df = pd.concat([a.drop(columns="tuned_errors"), b.drop(columns="tuned_errors")], ignore_index=True)
    c = fixres.control(df, "rrc", "pad")
    assert (c["size"], c["n"], c["delta"]) == (20, 12, pytest.approx(-3.0))
    assert fixres.lines(df)[-1] == ("rrc against pad: the change from 16 px to 20 px beats pad's change: -3.0 points "
                                    "[-3.0, -3.0], n = 12 models, noise floor not measured")


@pytest.mark.parametrize("name, arms, per_arm, extra", [
    ("fixres", ["rrc", "pad"], 12, 4),  # 12 models x 2 arms, 4 noise repeats of rrc's models
    ("progressive", ["fixed", "progressive", "progressive_fixed_reg"], 12, 4),
])
def test_claim_experiments_plan_what_they_claim(name, arms, per_arm, extra):
    from dse.run.plan import plan, points

    e = load(ROOT / "experiments" / f"{name}.yaml")
    pts = points(e, plan(e))
    assert [a.name for a in e.arms] == arms and e.noise.models * e.noise.repeats == extra
    assert {a: sum(p["arm"] == a for p in pts) for a in arms} == {a: per_arm for a in arms}
    ids = {a: sorted(p["sample"]["id"] for p in pts if p["arm"] == a) for a in arms}
    assert all(ids[a] == ids[arms[0]] for a in arms)  # the same models in every arm: paired


@pytest.mark.parametrize("name", ["efficientnet_scaling", "efficientnet_scaling_b32"])
def test_scaling_experiment_plans_one_network_per_arm_near_its_flops_target(name):
    """experiments/efficientnet_scaling*.yaml: 8 arms of 6 seeds each, one network per arm, whose FLOPs (the
    counter's, checked against fvcore elsewhere) are within 10% of the 2x or 4x its name says, relative to the proxy
    base; the sensitivity check trains the same networks."""
    import dse
    from dse.run.plan import plan, points

    e = load(ROOT / "experiments" / f"{name}.yaml")
    ref = load(ROOT / "experiments" / "efficientnet_scaling.yaml")
    assert [(a.name, a.space, a.set) for a in e.arms] == [(a.name, a.space, a.set) for a in ref.arms]
    pts = points(e, plan(e))
    names = [a.name for a in e.arms]
    assert sorted(names) == sorted(f"{k}@{t}x" for k in ("width", "depth", "resolution", "compound_paper")
                                   for t in (2, 4))
    base = dse.describe("efficientnet_fmnist", width=0.25, depth=1.0, res=14).cx.flops
    for a in names:
        mine = [p for p in pts if p["arm"] == a]
        assert sorted(p["repeat"] for p in mine) == list(range(6))
        assert len({p["sample"]["id"] for p in mine}) == 1
        target = int(a.split("@")[1].rstrip("x"))
        assert abs(mine[0]["sample"]["flops"] / base - target) <= 0.1 * target, a
