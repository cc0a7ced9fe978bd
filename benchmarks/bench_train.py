"""Trainer throughput on CPU: the trainer against the one it replaced, in the same run:
python benchmarks/bench_train.py [--threads T] [--repeats R] [--quick].

The baseline is dse 0.2's path, kept here verbatim in spirit (`old_train`): images stored as normalised float32 at
the training resolution, a pad-crop gather per batch, and a host read of the loss and of the error count at every
step. The new path (dse.train.train) keeps uint8 images at their own size, normalises and views each batch where it
trains, accumulates on the device and reads it once per epoch; it is run with pad-crop (the same augmentation as
the baseline) and with RandomResizedCrop. Both train the same network with the same recipe and thread count;
images/s counts training images over the training loop's own time (validation excluded); the best of R alternating
runs is kept. It also prints the new path's FLOP rate (3 x the forward multiply-adds x 2 per image, the usual
training estimate) against this CPU's measured float32 matmul peak at the same thread count."""
from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

import dse
from dse.data import load_data, resize
from dse.train.recipe import Augment
from dse.train import CL, Recipe, lr_at, steps_per_epoch, train
from dse.space.units import fmt

SETTINGS = [  # (data, n_train, flops band at 224 px, res, batch_size, epochs)
    ("digits", None, (None, 40e6), 8, 256, 4),  # the tests' tiny networks: little compute per image
    ("digits", None, (360e6, 400e6), 16, 64, 3),  # the main job's recipe
    ("fashion_mnist", 5000, (360e6, 400e6), 16, 64, 2),  # the Fashion-MNIST main job's recipe
]


def old_data(data, res: int):
    """dse 0.2's storage: float32 images normalised with the training mean/std, resized once to res."""
    def prep(x):
        return resize((x.float() / 255 - data.mean.view(1, -1, 1, 1)) / data.std.view(1, -1, 1, 1), res)
    return prep(data.x_train), prep(data.x_val)


def old_augment(x, pad: int, flip: bool, gen):
    """dse 0.2's batch crop: pad, then one gather per batch."""
    n, c, h, w = x.shape
    x = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen)
    rows, cols = dy + torch.arange(h), dx + torch.arange(w)
    if flip:
        cols = torch.where(torch.rand((n, 1), generator=gen) < 0.5, cols.flip(1), cols)
    idx = (rows[:, :, None] * x.shape[-1] + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return x.flatten(2).gather(2, idx).view(n, c, h, w)


def old_train(make, data, r: Recipe, seed: int, threads: int, device: str = "cpu") -> float:
    """dse 0.2's training loop (per-step host syncs; on a GPU, each batch copied from the host); returns training
    images/s."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dev = torch.device(device)
    net = make().to(dev, memory_format=CL)
    xt, xv = old_data(data, data.res)
    yt, yv = data.y_train, data.y_val
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=r.peak_lr, momentum=r.momentum, nesterov=True, weight_decay=r.wd)
    spe = steps_per_epoch(len(yt), r.batch_size)
    total, warm = r.epochs * spe, round(r.warmup * spe)
    busy, seen = 0.0, 0
    for epoch in range(r.epochs):
        te = time.perf_counter()
        net.train()
        order = torch.randperm(len(yt), generator=gen)
        loss_sum, wrong = 0.0, 0
        for i in range(spe):
            idx = order[i * r.batch_size:(i + 1) * r.batch_size]
            x, y = old_augment(xt[idx], data.res // 8, data.flip, gen).to(dev), yt[idx].to(dev)
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * spe + i, total, warm, r.peak_lr)
            out = net(x.to(memory_format=CL))
            loss = F.cross_entropy(out, y)
            v = loss.item()
            if not math.isfinite(v):
                raise RuntimeError("diverged")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += v * len(y)
            wrong += int((out.detach().argmax(1) != y).sum())
            seen += len(y)
        busy += time.perf_counter() - te
        net.eval()
        with torch.inference_mode():
            sum(int((net(xv[j:j + 512].to(dev, memory_format=CL)).argmax(1) != yv[j:j + 512].to(dev)).sum())
                for j in range(0, len(yv), 512))
    return seen / busy


def new_train(make, data, r: Recipe, seed: int, threads: int) -> float:
    """dse.train.train; returns training images/s (its per-epoch ips, over full batches)."""
    res = train(make, data, r, seed=seed, threads=threads)
    assert res["status"] == "ok", res["reason"]
    per_epoch = r.batch_size * steps_per_epoch(data.n_train, r.batch_size)
    return per_epoch * r.epochs / sum(per_epoch / e["ips"] for e in res["epochs"])


def matmul_peak(threads: int, n: int = 1024, repeats: int = 20) -> float:
    """This CPU's float32 matmul rate (FLOP/s, 2 per multiply-add) at `threads` threads, best of a few runs."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 * repeats / best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="one epoch of the first setting (a smoke run)")
    a = p.parse_args(argv)
    settings = [(*SETTINGS[0][:5], 1)] if a.quick else SETTINGS
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the first optimiser imports torch._dynamo (~1 s)
    peak = matmul_peak(a.threads)
    print(f"one anynetx_a sample per setting (seed {a.seed}), {a.threads} thread(s), best of {a.repeats} "
          f"alternating runs; float32 matmul peak {peak / 1e9:.1f} GFLOP/s; the machine may be shared: read ratios")
    print(f"| data | model (flops@224) | res | batch | old img/s | new pad img/s | ratio | new rrc img/s | ratio | "
          f"new pad GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, n_train, band, res, bs, epochs in settings:
        cfg = dse.sample("anynetx_a", 1, flops=band, seed=a.seed)[0].config
        data = load_data(name, res=res, n_train=n_train)
        r = Recipe(epochs=epochs, batch_size=bs, lr=0.1, warmup=1)
        rrc = Recipe(epochs=epochs, batch_size=bs, lr=0.1, warmup=1, augment=Augment(crop="rrc"))
        kw = {"res": res, "classes": data.classes, "in_ch": data.channels}

        def make():
            return dse.build(cfg, **kw)

        best = {"old": 0.0, "pad": 0.0, "rrc": 0.0}
        for _ in range(a.repeats):
            best["old"] = max(best["old"], old_train(make, data, r, a.seed, a.threads))
            best["pad"] = max(best["pad"], new_train(make, data, r, a.seed, a.threads))
            best["rrc"] = max(best["rrc"], new_train(make, data, rrc, a.seed, a.threads))
        flops = 3 * 2 * dse.complexity(cfg.net.replace(**kw)).flops * best["pad"]
        print(f"| {name}{f' ({n_train})' if n_train else ''} | {cfg.id} ({fmt(dse.complexity(cfg.net).flops)}) | "
              f"{res} | {bs} | {best['old']:.0f} | {best['pad']:.0f} | {best['pad'] / best['old']:.2f}x | "
              f"{best['rrc']:.0f} | {best['rrc'] / best['old']:.2f}x | {flops / 1e9:.2f} | {flops / peak:.1%} |")
    print("ratio: new path over dse 0.2's (>= 1: no slower); rrc does more work per batch (one grid_sample)")


if __name__ == "__main__":
    main()
