"""Trainer throughput: dse.train.train against a plain PyTorch loop in the same run: python benchmarks/bench_train.py.

The baseline is the textbook loop: a DataLoader over a TensorDataset (shuffled, last partial batch dropped), the same
model, batch size, threads, epochs, SGD settings and lr schedule, a loss.item() and an accuracy count per step, and a
DataLoader pass over the validation set after each epoch. dse.train does the same work plus a batched random-crop
augmentation and a divergence check, but gathers each batch with one tensor index instead of per-image
__getitem__ calls and a collate. Images/s counts training images over the training loops' time.
"""
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import dse
from dse.data import batches, load_data
from dse.train import Recipe, lr_at, train
from dse.units import fmt

SETTINGS = [  # (flops band at 224 px, res, batch_size, epochs)
    ((None, 40e6), 8, 256, 4),  # the tests' tiny networks: little compute per image, so the data path shows
    ((360e6, 400e6), 16, 64, 3),  # experiments/quick.yaml
    ((360e6, 400e6), 32, 128, 2),
]


def plain(make, data, r: Recipe, seed: int, threads: int) -> tuple[float, int, float]:
    """(training seconds, images trained, total seconds) of the plain PyTorch loop."""
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = make()
    opt = torch.optim.SGD(net.parameters(), lr=r.peak_lr, momentum=r.momentum, nesterov=r.nesterov,
                          weight_decay=r.wd)
    train_dl = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=r.batch_size, shuffle=True,
                          drop_last=True, generator=torch.Generator().manual_seed(seed))
    val_dl = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=512)
    spe = len(train_dl)
    total, warm = r.epochs * spe, round(r.warmup * spe)
    busy, seen = 0.0, 0
    for epoch in range(r.epochs):
        te = time.perf_counter()
        net.train()
        loss_sum, wrong = 0.0, 0
        for i, (x, y) in enumerate(train_dl):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * spe + i, total, warm, r.peak_lr)
            out = net(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            wrong += int((out.detach().argmax(1) != y).sum())
            seen += len(y)
        busy += time.perf_counter() - te
        net.eval()
        with torch.inference_mode():
            sum(int((net(x).argmax(1) != y).sum()) for x, y in val_dl)
    return busy, seen, time.perf_counter() - t0


def ours(make, data, r: Recipe, seed: int, threads: int) -> tuple[float, int, float]:
    """(training seconds, images trained, total seconds) of dse.train.train."""
    t0 = time.perf_counter()
    res = train(make, data, r, seed=seed, threads=threads)
    assert res["status"] == "ok", res["reason"]
    per_epoch = r.batch_size * (data.n_train // r.batch_size)  # full batches only, as in the baseline
    busy = sum(per_epoch / e["ips"] for e in res["epochs"])  # ips is measured over the training loop alone
    return busy, per_epoch * r.epochs, time.perf_counter() - t0


def data_path(data, bs: int, repeats: int = 3) -> tuple[float, float]:
    """Images/s of one training epoch's batches alone: dse.data.batches (augmented, as train uses it) and a DataLoader."""
    def rate(it) -> float:
        t = time.perf_counter()
        return sum(len(y) for _, y in it) / (time.perf_counter() - t)

    dl = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=bs, shuffle=True, drop_last=True)
    ours_ = max(rate(batches(data, bs, train=True, generator=torch.Generator().manual_seed(0), pad=None))
                for _ in range(repeats))
    return ours_, max(rate(dl) for _ in range(repeats))


def main(threads: int = 1, seed: int = 0, repeats: int = 2) -> None:
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the first optimiser imports torch._dynamo (~1 s)
    print(f"digits, one anynetx_a sample per band (seed {seed}), {threads} thread(s), best of {repeats} alternating "
          f"runs; the machine may be shared, so compare the ratios")
    print(f"{'model (flops)':>20} {'res':>4} {'batch':>5} {'epochs':>6} | {'dse img/s':>9} {'plain img/s':>11} {'ratio':>6} | "
          f"{'dse s':>6} {'plain s':>7} {'ratio':>6}")
    paths = []
    for band, res, bs, epochs in SETTINGS:
        cfg = dse.sample("anynetx_a", 1, flops=band, seed=seed)[0].config
        data = load_data("digits", res=res)
        r = Recipe(epochs=epochs, batch_size=bs, lr=0.4, warmup=1)

        def make():
            return dse.build(cfg, res=res, classes=data.classes)

        best = {}
        for _ in range(repeats):
            for name, f in (("dse", ours), ("plain", plain)):
                busy, seen, wall = f(make, data, r, seed, threads)
                b = best.get(name)
                best[name] = (min(busy, b[0]) if b else busy, seen, min(wall, b[2]) if b else wall)
        ips = {k: v[1] / v[0] for k, v in best.items()}
        print(f"{cfg.id:>12} {fmt(dse.complexity(cfg.net).flops):>5}F {res:>4} {bs:>5} {epochs:>6} | {ips['dse']:>9.0f} {ips['plain']:>11.0f} "
              f"{ips['dse'] / ips['plain']:>5.2f}x | {best['dse'][2]:>6.2f} {best['plain'][2]:>7.2f} "
              f"{best['plain'][2] / best['dse'][2]:>5.2f}x")
        paths.append((res, bs, *data_path(data, bs)))
    print("ratio > 1: dse is faster (goal: images/s ratio >= 1.2x); seconds include per-epoch validation")
    print("data path alone (no model), images/s:")
    for res, bs, a, b in paths:
        print(f"  {res:>2} px, batch {bs:>3}: dse.data.batches (with crop augmentation) {a:>8.0f}, "
              f"DataLoader {b:>8.0f}, ratio {a / b:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
