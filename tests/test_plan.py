"""The plan of a sweep: grown sweeps keep their samples first, noise repeats are spread over the error range."""
import yaml

import dse
from dse.run.plan import key, noise_models, trial_seed
from dse.run.sweep import prepare


def exp(**kw):
    d = {"name": "p", "spaces": ["anynetx_a", "anynetx_e"], "n": 2, "flops": "-40M", "seed": 0,
         "data": {"name": "digits", "res": 8}, **kw}
    return dse.experiment.parse(d, "p.yaml")


def test_growing_n_keeps_every_space_s_first_samples(tmp_path):
    old = exp()
    out = tmp_path / "run"
    out.mkdir()
    _, recs = prepare(old, out, resume=False)
    (out / "plan.jsonl").write_text("".join(dse.models.config.canonical(r) + "\n" for r in recs))
    (out / "experiment.yaml").write_text(yaml.safe_dump(old.to_dict()))
    grown, plan = prepare(exp(n=3), out, resume=True)
    assert grown.n == 3 and plan[:4] == recs  # the saved plan is the prefix
    ids = {s: [s_.id for s_ in dse.sample(s, 3, flops=(None, 40e6), seed=0)] for s in ("anynetx_a", "anynetx_e")}
    assert [r["id"] for r in plan] == ids["anynetx_a"][:2] + ids["anynetx_e"][:2] + [ids["anynetx_a"][2],
                                                                                        ids["anynetx_e"][2]]


def test_noise_models_spread_over_the_error_range():
    rows = [{"id": f"m{i}", "error": e, "status": "ok"} for i, e in enumerate([50, 10, 30, 20, 40, 60, 5])]
    rows += [{"id": "bad", "error": None, "status": "failed"}, {"id": "m1", "error": 1, "status": "ok", "repeat": 1}]
    # sorted errors 5 10 20 30 40 50 60 -> ranks 0, 3, 6 for three models: the best, the median, the worst
    assert noise_models(rows, 3) == ["m6", "m2", "m5"]
    assert noise_models(rows, 20) == ["m6", "m1", "m3", "m2", "m4", "m0", "m5"]
    assert noise_models(rows, 0) == []


def test_repeats_have_their_own_seed_and_key():
    assert trial_seed(0, "abc") == trial_seed(0, "abc", 0) != trial_seed(0, "abc", 1) != trial_seed(0, "abc", 2)
    assert key("abc") == "abc" and key("abc", 2) == "abc:2"
