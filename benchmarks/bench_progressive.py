"""Progressive learning (EfficientNetV2 Sec. 4.2) against fixed-size training: time to a target validation accuracy.

Same model (one EfficientNetV2-space sample), same digits data, same recipe and epochs, same seeds, one torch
thread each, run back to back. Fixed-size trains every epoch at the full resolution with the model's own dropout;
progressive raises image size (V2-S ratio 128/300 of it -> full), dropout 0.1 -> 0.3 and RandAugment 5 -> 15 over
4 stages (the V2-S defaults). Time counts each epoch's training plus its validation pass (always at full size).
Prints per mode: seconds and epochs to the target accuracy, final error, total time; then fixed/progressive ratios.

    python benchmarks/bench_progressive.py [--epochs 12] [--res 32] [--target 90] [--seeds 0,1]
"""
import argparse
import statistics

import torch

import dse
from dse.data import load_data
from dse.models import build
from dse.train.progressive import Progressive
from dse.train import Recipe, train


def time_to(history: list, target_err: float):
    """(seconds, epochs) until the first epoch whose validation error is <= target_err, or (None, None)."""
    t = 0.0
    for h in history:
        t += h["time"]
        if h["val_error"] <= target_err:
            return t, h["epoch"]
    return None, None


def run(net, data, recipe, seed, prog):
    r = train(lambda: build(net, res=data.res, classes=data.classes, dropout=0.3 if prog else net.dropout), data,
              recipe, seed=seed, threads=1, progressive=prog)
    assert r["status"] == "ok", r["reason"]
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--target", type=float, default=90.0, help="target validation accuracy, %%")
    ap.add_argument("--seeds", default="0,1", help="comma list; each seed trains both modes")
    a = ap.parse_args()
    torch.set_num_threads(1)
    s = dse.sample("efficientnetv2", 1, flops=(None, 0.4e9), seed=0)[0]
    data = load_data("digits", res=a.res)
    recipe = Recipe(epochs=a.epochs, batch_size=64, lr=0.2, warmup=1)
    modes = {"fixed": None, "progressive": Progressive()}
    stats = {m: {"t": [], "e": [], "err": [], "wall": [], "curves": []} for m in modes}
    for seed in (int(x) for x in a.seeds.split(",")):
        for m, prog in modes.items():
            r = run(s.config.net, data, recipe, seed, prog)
            t, e = time_to(r["epochs"], 100 - a.target)
            st = stats[m]
            st["t"].append(t)
            st["e"].append(e)
            st["err"].append(r["error"])
            st["wall"].append(sum(h["time"] for h in r["epochs"]))
            st["curves"].append([round(h["val_error"], 1) for h in r["epochs"]])
            if prog is not None and seed == int(a.seeds.split(",")[0]):
                sizes = [h["res"] for h in r["epochs"]]
    print(f"model: efficientnetv2 sample {s.id} ({s.cx.params / 1e6:.2f}M params at 1000 classes); digits at "
          f"{a.res} px, {a.epochs} epochs, batch {recipe.batch_size}, seeds {a.seeds}, 1 thread")
    print(f"progressive image sizes per epoch: {sizes}")
    print(f"target: {a.target:g}% validation accuracy (error <= {100 - a.target:g}%)")
    mean = lambda v: statistics.fmean(v) if v and all(x is not None for x in v) else None  # noqa: E731
    for m, st in stats.items():
        t = mean(st["t"])
        print(f"{m:12s} time to target {'not reached' if t is None else f'{t:6.1f} s'}"
              f" (epochs {st['e']})  final error {mean(st['err']):5.2f}% {[round(x, 2) for x in st['err']]}"
              f"  total {mean(st['wall']):6.1f} s")
        for c in st["curves"]:
            print(f"{'':12s} val error per epoch: {c}")
    tf, tp = mean(stats["fixed"]["t"]), mean(stats["progressive"]["t"])
    if tf and tp:
        print(f"ratio fixed / progressive: time to target {tf / tp:.2f}x, "
              f"total time {mean(stats['fixed']['wall']) / mean(stats['progressive']['wall']):.2f}x")
    else:
        print("ratio: the target was not reached by every run; lower --target or raise --epochs")


if __name__ == "__main__":
    main()
