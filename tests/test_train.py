"""The trainer: learns, is deterministic, resumes exactly, and records divergence as a failure."""

import pytest
import torch
from torch import nn

from dse.data import load_data
from dse.errors import DseError
from dse.train import Recipe, evaluate, lr_at, train


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", res=16)


def tiny():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                         nn.Flatten(), nn.Linear(256, 10))


def test_learns_well_below_chance(digits):
    r = train(tiny, digits, Recipe(epochs=3, batch_size=64, lr=0.2), seed=0, threads=1)
    assert r["status"] == "ok" and r["reason"] is None
    assert r["error"] < 40  # chance is 90 %
    assert len(r["epochs"]) == 3 and r["epochs"][0]["epoch"] == 1
    assert {"train_loss", "train_error", "val_error", "lr", "time", "train_time", "ips"} <= set(r["epochs"][0])
    assert all(0 < e["train_time"] < e["time"] for e in r["epochs"])  # the epoch's validation is not training
    assert r["best_error"] == min(e["val_error"] for e in r["epochs"])
    assert r["threads"] == 1 and r["seed"] == 0 and r["torch"] == torch.__version__


def test_same_seed_same_threads_same_error(digits):
    a = train(tiny, digits, Recipe(epochs=2, batch_size=64), seed=3, threads=1)
    b = train(tiny, digits, Recipe(epochs=2, batch_size=64), seed=3, threads=1)
    c = train(tiny, digits, Recipe(epochs=2, batch_size=64), seed=4, threads=1)
    assert [e["val_error"] for e in a["epochs"]] == [e["val_error"] for e in b["epochs"]]
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    assert [e["train_loss"] for e in a["epochs"]] != [e["train_loss"] for e in c["epochs"]]


def test_resume_from_epoch_state_is_exact(digits):
    states = []
    full = train(tiny, digits, Recipe(epochs=3, batch_size=64), seed=1, threads=1,
                 on_epoch=lambda m, s: states.append(s))
    assert [s["epoch"] for s in states] == [1, 2, 3]
    resumed = train(tiny, digits, Recipe(epochs=3, batch_size=64), seed=1, threads=1, resume=states[0])
    assert [e["val_error"] for e in resumed["epochs"]] == [e["val_error"] for e in full["epochs"]]
    assert [e["train_loss"] for e in resumed["epochs"]] == [e["train_loss"] for e in full["epochs"]]
    done = train(tiny, digits, Recipe(epochs=3, batch_size=64), seed=1, threads=1, resume=states[-1])
    assert done["error"] == full["error"]  # a finished state trains nothing more


def test_divergence_is_a_failed_status_not_an_exception(digits):
    r = train(tiny, digits, Recipe(epochs=2, batch_size=64, lr=1e12), seed=0, threads=1)
    assert r["status"] == "failed" and "diverged" in r["reason"] and "epoch" in r["reason"]


def test_warmup_then_cosine_schedule():
    # hand values: peak 0.4 over 10 warm-up steps of 110; the cosine then spans 100 steps
    peak, total, warm = 0.4, 110, 10
    assert lr_at(0, total, warm, peak) == pytest.approx(0.04)  # 1/10 of the peak after the first step
    assert lr_at(9, total, warm, peak) == pytest.approx(0.4)
    assert lr_at(10, total, warm, peak) == pytest.approx(0.4)  # cos(0) = 1
    assert lr_at(60, total, warm, peak) == pytest.approx(0.2)  # half way: cos(pi/2) = 0
    assert lr_at(35, total, warm, peak) == pytest.approx(0.2 * (1 + 0.5 ** 0.5))  # a quarter: cos(pi/4)
    assert lr_at(109, total, warm, peak) < 0.001 * peak


def test_recipe_validation():
    with pytest.raises(DseError, match="train.zz: unknown key"):
        Recipe.from_dict({"zz": 1})
    with pytest.raises(DseError, match="epochs"):
        Recipe(epochs=0)


def test_evaluate_at_another_resolution(digits):
    m = tiny()
    e16 = evaluate(m, digits)
    e24 = evaluate(m, digits, res=24)
    assert 0 <= e16 <= 100 and 0 <= e24 <= 100


def test_progressive_schedule_is_applied_per_epoch(digits):
    from dse.train.progressive import Progressive, schedule
    p = Progressive(stages=4, res_min=8, res_max=16, randaug=(5, 15), mixup=(0.0, 0.2), dropout=(0.1, 0.3))
    sch = schedule(p, 8, 16)
    # 8 epochs in 4 stages: two epochs per stage, every setting rising linearly from min to max
    assert [s["stage"] for s in sch] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert [s["res"] for s in sch[::2]] == [8, 11, 13, 16]
    assert [round(s["dropout"], 4) for s in sch[::2]] == [0.1, 0.1667, 0.2333, 0.3]
    assert sch[0]["randaug"] == 5 and sch[-1]["randaug"] == 15 and sch[-1]["mixup"] == pytest.approx(0.2)

    def model():
        return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                             nn.Dropout(0.0), nn.Linear(64, 10))
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model()

        def forward(self, x):
            if self.training:
                seen.append((x.shape[-1], self.m[4].p))
            return self.m(x)

    r = train(Spy, digits, Recipe(epochs=8, batch_size=256), seed=0, threads=1, progressive=p)
    assert r["status"] == "ok"
    assert [e["res"] for e in r["epochs"]] == [s["res"] for s in sch]
    per_epoch = len(seen) // 8
    assert [seen[i * per_epoch] for i in range(8)] == [(s["res"], pytest.approx(s["dropout"])) for s in sch]
    # the V2-S defaults scale to the experiment's image size: 128/300 of it up to the full size
    d = schedule(Progressive(), 4, 32)
    assert (d[0]["res"], d[-1]["res"], d[0]["randaug"], d[-1]["randaug"]) == (14, 32, 5, 15)


def reference(make, data, recipe, seed):
    """The textbook loop over the same batches: a host read of the loss (and a divergence check) at every step."""
    from dse.data import train_batches
    from dse.train import CL, steps_per_epoch

    torch.manual_seed(seed)
    net = make().to(memory_format=CL)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=recipe.peak_lr, momentum=recipe.momentum, nesterov=True,
                          weight_decay=recipe.wd)
    spe = steps_per_epoch(data.n_train, recipe.batch_size)
    losses, errors = [], []
    for epoch in range(recipe.epochs):
        total, seen = 0.0, 0
        for i, (x, y) in enumerate(train_batches(data, recipe.batch_size, gen, aug=recipe.augment)):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * spe + i, recipe.epochs * spe, round(recipe.warmup * spe), recipe.peak_lr)
            loss = torch.nn.functional.cross_entropy(net(x.contiguous(memory_format=CL)), y)
            v = loss.item()
            assert v == v
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, seen = total + v * len(y), seen + len(y)
        losses.append(total / seen)
        errors.append(evaluate(net, data))
    return losses, errors


@pytest.mark.parametrize("crop", ["pad", "rrc"])
def test_no_per_step_sync_gives_the_textbook_loop_s_result(digits, crop):
    """On the CPU the trainer (device accumulators, deferred divergence checks, a disabled grad scaler) gives the
    per-step loop's errors exactly and its mean losses up to float reassociation (float32 device sums against
    float64 host sums: relative 1e-5)."""
    from dse.train.recipe import Augment
    r = Recipe(epochs=2, batch_size=64, lr=0.2, augment=Augment(crop=crop))
    got = train(tiny, digits, r, seed=5, threads=1)
    losses, errors = reference(tiny, digits, r, 5)
    assert [e["val_error"] for e in got["epochs"]] == errors
    assert [e["train_loss"] for e in got["epochs"]] == pytest.approx(losses, rel=1e-5)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_learns_and_resumes(digits, amp):
    states = []
    r = Recipe(epochs=3, batch_size=64, lr=0.2, amp=amp)
    full = train(tiny, digits, r, seed=0, threads=1, on_epoch=lambda m, s: states.append(s))
    assert full["status"] == "ok" and full["error"] < 40
    assert (states[0]["scaler"] is not None) == (amp == "fp16")  # fp16 scales its gradients, bf16 needs not
    again = train(tiny, digits, r, seed=0, threads=1, resume=states[0])
    assert [e["val_error"] for e in again["epochs"]] == [e["val_error"] for e in full["epochs"]]
    with pytest.raises(DseError, match="train.amp: must be none or bf16 or fp16"):
        Recipe(amp="fp8")


def test_compile_is_timed_apart_and_changes_nothing_else(digits):
    r = Recipe(epochs=2, batch_size=64, lr=0.2)
    plain = train(tiny, digits, r, seed=2, threads=1)
    comp = train(tiny, digits, r, seed=2, threads=1, compile="eager")  # dynamo's trace, run by eager kernels
    assert plain["compile_time"] is None and comp["compile_time"] > 0
    assert [e["val_error"] for e in comp["epochs"]] == [e["val_error"] for e in plain["epochs"]]


def test_divergence_names_its_first_step_without_a_sync_per_step(digits):
    r = train(tiny, digits, Recipe(epochs=2, batch_size=64, lr=1e12), seed=0, threads=1)
    assert r["status"] == "failed" and r["reason"].startswith("loss diverged (nan) at epoch 1, step ")
    step = int(r["reason"].rsplit(" ", 1)[1])
    assert 1 <= step <= 50  # found at the first check (every 50 steps), not at the epoch's end


def test_data_is_placed_once_on_the_device(digits):
    from dse.train import place
    assert place(digits, torch.device("cpu")) is digits
    moved = digits.to("meta")
    assert moved.x_train.device.type == "meta" and moved.x_train.dtype == torch.uint8 and moved.n_train == 1437
