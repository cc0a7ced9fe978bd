"""A V2-space sweep with the training-aware reward, end to end on digits (a tiny experiments/efficientnetv2_quick.yaml)."""
import pytest
import yaml

import dse
from dse.analysis.table import ascending, best

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def df(tmp_path_factory):
    d = tmp_path_factory.mktemp("v2")
    e = yaml.safe_load(open("experiments/efficientnetv2_quick.yaml"))
    assert e["spaces"] == ["efficientnetv2"] and e["reward"]["w"] == -0.07 and e["reward"]["v"] == -0.05
    e.update(n=2)
    e["data"].update(res=8)
    e["train"].update(epochs=1)
    (d / "e.yaml").write_text(yaml.safe_dump(e))
    return dse.load_results(dse.sweep(dse.experiment.load(d / "e.yaml"), d / "run", progress=False))


def test_every_row_has_the_hand_reward(df):
    assert len(df) == 2 and (df["status"] == "ok").all() and (df["space"] == "efficientnetv2").all()
    for _, r in df.iterrows():
        assert r["step_time"] > 0 and r["train_params"] > 0
        # reward = A * S^w * P^v: A = top-1 accuracy as a fraction, S = seconds per training step (s_ref 1 s),
        # P = params of the trained 10-class network in millions (p_ref 1e6), w = -0.07, v = -0.05
        a = 1 - r["error"] / 100
        assert r["reward"] == pytest.approx(a * r["step_time"] ** -0.07 * (r["train_params"] / 1e6) ** -0.05)


def test_best_by_reward_is_the_highest_reward(df):
    assert ascending("reward") is False
    top = best(df, 1, metric="reward")
    assert len(top) == 1 and top.iloc[0]["reward"] == df["reward"].max()
    assert top.iloc[0]["id"] == df.loc[df["reward"].idxmax(), "id"]
