"""Trainer throughput on a GPU, path by path, in one run of at most 8 minutes:
python benchmarks/bench_gpu.py [--epochs E] [--pack 4,8] [--peak-tflops T] [--backend inductor]
python benchmarks/bench_gpu.py --cpu --quick      (the same code paths on the CPU, tiny, in seconds)

Images per second of RegNetX samples in 360-400MF (at 224 px; trained at 32 px, about 8 MFLOP per image forward)
on CIFAR-sized synthetic data (50,000 uint8 3×32×32 training images and 10,000 validation images, 10 classes), by:
  (a) dse 0.2's path: benchmarks/bench_train.py's old_train, float32 images on the host, each batch augmented there
      and copied to the device, a host read of the loss and of the error count at every step, fp32;
  (b) dse.train.train: the uint8 images resident on the device, batches drawn and augmented there, loss and errors
      read once per epoch, fp32;
  (c) (b) with bf16 autocast;
  (d) (c) with torch.compile (its compile time is printed apart and excluded from images/s);
  (e) 4 and 8 trials packed on one GPU: processes started here, each training its own sample of the band with (c)
      (as a sweep would), their aggregate images/s over the window from the first start to the last finish (their
      validation passes and first steps included; MFU from each sample's own multiply-adds).
Every path uses channels_last, as dse 0.2 already did. images/s counts training images over the training steps'
own time (validation excluded), except (e). It prints each rate's ratio to (a), the model FLOP utilisation (MFU: 6 x
the forward multiply-adds per image x images/s, over the GPU's dense bf16 peak, or on the CPU this CPU's measured
float32 matmul rate) and a projection of the goal "100 CIFAR-sized samples x 10 epochs on one H100/H200 in <= 10
minutes": 50M training images plus 10M validation images, each sample paying its set-up and compile time."""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import matmul_peak, old_train  # noqa: E402  (dse 0.2's loop and the CPU's matmul peak)

import dse  # noqa: E402
import dse.train as T  # noqa: E402
from dse.data import Data  # noqa: E402
from dse.train import Recipe, sync, train  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s) from NVIDIA's data sheets: the sparsity figures halved.
PEAKS = (("H200 NVL", 835), ("H200", 989), ("H100 NVL", 835), ("H100 PCIe", 756), ("H100", 989), ("GH200", 989),
         ("A100", 312), ("L40S", 362), ("L4", 121))
GOAL = {"samples": 100, "epochs": 10, "minutes": 10}
FULL = {"n_train": 50_000, "n_val": 10_000, "res": 32, "batch": 128, "epochs": 2}
QUICK = {"n_train": 512, "n_val": 128, "res": 32, "batch": 128, "epochs": 1, "flops": "-40M"}


def peak_of(name: str) -> float | None:
    """The dense bf16 peak (FLOP/s) of a GPU by its name, None if it is not in PEAKS."""
    for key, tf in PEAKS:
        if key.lower() in name.lower():
            return tf * 1e12
    return None


def synthetic(n_train: int, n_val: int, res: int, seed: int = 0, device="cpu") -> Data:
    """CIFAR-sized random uint8 images and labels (10 classes) as a dse Data."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n_train + n_val, 3, res, res), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n_train + n_val,), generator=g)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.29)
    d = Data("synthetic", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10, res, True, mean, std, "test")
    return d.to(device)


def samples(k: int, band: tuple, seed: int):
    return [s.config for s in dse.sample("regnetx", k, flops=band, seed=seed)]


def builder(cfg, res: int):
    return lambda: dse.build(cfg, res=res, classes=10, in_ch=3)


def new_path(cfg, data, r: Recipe, dev: str, threads: int, compile=False) -> dict:
    """dse.train.train: images/s over the training steps (epochs after the first when there are several), the
    seconds per epoch outside them (validation), the set-up and the compile seconds."""
    t0 = time.perf_counter()
    res = train(builder(cfg, data.res), data, r, seed=0, threads=threads, device=dev, compile=compile)
    wall = time.perf_counter() - t0
    if res["status"] != "ok":
        return {"ips": math.nan, "failed": res["reason"], "wall": wall}
    eps = res["epochs"][1:] or res["epochs"]
    spe = T.steps_per_epoch(data.n_train, r.batch_size) * r.batch_size
    comp = res["compile_time"] or 0.0
    epochs = sum(e["time"] for e in res["epochs"])
    other = (epochs - sum(spe / e["ips"] for e in res["epochs"]) - comp) / len(res["epochs"])
    return {"ips": sum(e["ips"] for e in eps) / len(eps), "epoch_other": max(0.0, other),
            "setup": max(0.0, wall - epochs), "compile": comp, "wall": wall}


def old_path(cfg, data, r: Recipe, dev: str, threads: int) -> dict:
    """dse 0.2's loop (bench_train.old_train): images/s over its training steps, and its whole wall time."""
    t0 = time.perf_counter()
    ips = old_train(builder(cfg, data.res), data, r, 0, threads, device=dev)
    return {"ips": ips, "wall": time.perf_counter() - t0, "compile": 0.0}


def _packed(rank: int, cfg, a: dict, barrier, queue) -> None:
    """One packed trial (a process of its own, as a Ray actor would be): its data on the device, (c)'s settings."""
    torch.set_num_threads(a["threads"])
    data = synthetic(a["n_train"], a["n_val"], a["res"], seed=rank, device=a["dev"])
    r = Recipe(epochs=a["epochs"], batch_size=a["batch"], lr=0.1, warmup=0, amp=a["amp"])
    warm(a["dev"])
    barrier.wait()
    t0 = time.monotonic()
    res = train(builder(cfg, a["res"]), data, r, seed=rank, threads=a["threads"], device=a["dev"])
    queue.put((rank, t0, time.monotonic(), a["epochs"] * T.steps_per_epoch(a["n_train"], a["batch"]) * a["batch"],
               res["status"], torch.cuda.max_memory_allocated() if a["dev"] == "cuda" else None))


def packed(cfgs, a: dict, macs: list[int]) -> dict:
    """len(cfgs) trials at once, each its own process training its own sample: aggregate training images/s and
    FLOP/s (6 x each sample's multiply-adds per image) over the window from the first start to the last finish. A
    process that dies is an error at once, not a wait."""
    from queue import Empty

    ctx = mp.get_context("spawn" if a["dev"] == "cuda" else "fork")  # CUDA cannot be used in a forked child
    barrier, queue = ctx.Barrier(len(cfgs)), ctx.Queue()
    procs = [ctx.Process(target=_packed, args=(i, c, a, barrier, queue), daemon=True) for i, c in enumerate(cfgs)]
    for p in procs:
        p.start()
    got = []
    try:
        while len(got) < len(procs):
            try:
                got.append(queue.get(timeout=2))
            except Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a packed trial's process died (exit codes {dead})") from None
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    if any(g[4] != "ok" for g in got):
        raise RuntimeError(f"a packed trial failed: {[g[4] for g in got]}")
    window = max(g[2] for g in got) - min(g[1] for g in got)
    mem = [g[5] for g in got if g[5] is not None]
    return {"ips": sum(g[3] for g in got) / window, "flops": sum(6 * macs[g[0]] * g[3] for g in got) / window,
            "window": window, "mem": max(mem) if mem else None}


def warm(dev: str) -> None:
    """The device's libraries loaded (cuDNN, cuBLAS) before anything is timed."""
    x = torch.randn(8, 3, 32, 32, device=dev, requires_grad=True)
    torch.nn.functional.conv2d(x, torch.randn(8, 3, 3, 3, device=dev)).sum().backward()
    (torch.randn(64, 64, device=dev) @ torch.randn(64, 64, device=dev)).sum().item()
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the first optimiser imports torch._dynamo
    sync(torch.device(dev))


def projection(r: dict, n_train: int) -> float:
    """Minutes for GOAL's samples x epochs of CIFAR-sized data (FULL's 50,000 images) at this path's measured rates:
    one trial at a time pays, per sample, its set-up, its compile and per epoch 50,000 / img/s plus the epoch's other
    seconds (validation) scaled from this run's n_train; packed trials, the aggregate rate of their window (which
    covers their validation) and their compile time spread over the pack."""
    s, e, n = GOAL["samples"], GOAL["epochs"], FULL["n_train"]
    if "pack" in r:
        return (s * e * n / r["ips"] + s * r.get("compile", 0.0) / r["pack"]) / 60
    return s * (e * (n / r["ips"] + r["epoch_other"] * n / n_train) + r["setup"] + r["compile"]) / 60


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", action="store_true", help="run on the CPU (no GPU needed)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 512 images, samples under 40MF, 1 epoch, "
                   "packing by 2")
    p.add_argument("--epochs", type=int, help="epochs per path (default 2; rates from the epochs after the first)")
    p.add_argument("--pack", help="packed trials per GPU, a comma list (default 4,8; --cpu: 2)")
    p.add_argument("--flops", help="the samples' band at 224 px (default 360-400M; --quick: -40M)")
    p.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak (default: from the GPU's name)")
    p.add_argument("--backend", help="torch.compile backend (default inductor; --cpu: eager, dynamo's trace only)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per trial (default 1)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if not a.cpu and not torch.cuda.is_available():
        p.error("no CUDA device: run on a GPU, or pass --cpu")
    dev = "cpu" if a.cpu else "cuda"
    size = dict(QUICK if a.quick else FULL)
    if a.epochs:
        size["epochs"] = a.epochs
    pack = [int(x) for x in (a.pack or ("2" if a.cpu else "4,8")).split(",") if x]
    backend = a.backend or ("eager" if a.cpu else "inductor")
    band = dse.space.units.parse_band(a.flops or size.pop("flops", "360-400M"), "--flops")
    size.pop("flops", None)
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()

    if a.cpu:
        name, peak = f"CPU ({a.threads} thread(s))", matmul_peak(a.threads, n=256 if a.quick else 1024)
        peak_what = "this CPU's measured float32 matmul rate"
    else:
        name = torch.cuda.get_device_name()
        peak = a.peak_tflops * 1e12 if a.peak_tflops else peak_of(name)
        peak_what = "dense bf16 peak" + (" (--peak-tflops)" if a.peak_tflops else " (data sheet)")
    cfgs = samples(max(pack + [1]), band, a.seed)
    cfg = cfgs[0]
    macs = dse.complexity(cfg.net.replace(res=size["res"], classes=10, in_ch=3)).flops
    print(f"{name}; {cfg.id} (regnetx, {dse.space.units.fmt(dse.complexity(cfg.net).flops)} flops at 224 px, "
          f"{macs / 1e6:.1f}M at {size['res']} px); {size['n_train']} + {size['n_val']} synthetic images, batch "
          f"{size['batch']}, {size['epochs']} epoch(s) per path; peak: "
          + (f"{peak / 1e12:.1f} TFLOP/s, {peak_what}" if peak else "unknown (pass --peak-tflops)"))
    host = synthetic(size["n_train"], size["n_val"], size["res"], seed=a.seed)
    resident = host.to(dev)
    warm(dev)
    base = Recipe(epochs=size["epochs"], batch_size=size["batch"], lr=0.1, warmup=0)
    bf16 = Recipe(epochs=size["epochs"], batch_size=size["batch"], lr=0.1, warmup=0, amp="bf16")
    rows = [("(a) dse 0.2: host batches, a sync per step, fp32", old_path(cfg, host, base, dev, a.threads)),
            ("(b) resident uint8 data, no per-step sync, fp32", new_path(cfg, resident, base, dev, a.threads)),
            ("(c) (b) + bf16", new_path(cfg, resident, bf16, dev, a.threads)),
            (f"(d) (c) + torch.compile ({backend})", new_path(cfg, resident, bf16, dev, a.threads, compile=backend))]
    del resident
    a_, b_ = rows[0][1], rows[1][1]  # (a)'s validation costs about (b)'s; the rest of its wall is its set-up
    a_["epoch_other"] = b_.get("epoch_other", 0.0)
    a_["setup"] = max(0.0, a_["wall"] - size["epochs"] * (size["n_train"] / a_["ips"] + a_["epoch_other"]))
    spec = {"dev": dev, "threads": a.threads, "amp": "bf16", **{k: size[k] for k in ("n_train", "n_val", "res",
                                                                                       "batch", "epochs")}}
    all_macs = [dse.complexity(c.net.replace(res=size["res"], classes=10, in_ch=3)).flops for c in cfgs]
    for k in pack:
        t0 = time.perf_counter()
        r = packed(cfgs[:k], spec, all_macs)
        r["wall"] = time.perf_counter() - t0
        rows.append((f"(e) {k} packed trials, (c) each, aggregate", {**r, "pack": k}))

    print(f"| path | img/s | vs (a) | MFU | compile s | wall s | 100 x 10 epochs, projected "
          f"| <= {GOAL['minutes']} min |")
    print("|---|---|---|---|---|---|---|---|")
    ref = rows[0][1]["ips"]
    for label, r in rows:
        if r.get("failed"):
            print(f"| {label} | failed: {r['failed']} | | | | | | |")
            continue
        mfu = r.get("flops", 6 * macs * r["ips"]) / peak if peak else math.nan
        minutes = projection(r, size["n_train"])
        print(f"| {label} | {r['ips']:.0f} | {r['ips'] / ref:.2f}x | {mfu:.1%} | {r.get('compile', 0.0):.1f} | "
              f"{r['wall']:.1f} | {minutes:.1f} min | {'yes' if minutes <= GOAL['minutes'] else 'no'} |")
    print(f"goal: {GOAL['samples']} samples x {GOAL['epochs']} epochs of {FULL['n_train']} images = "
          f"{GOAL['samples'] * GOAL['epochs'] * FULL['n_train'] / 1e6:.0f}M training images in <= "
          f"{GOAL['minutes']} min needs {GOAL['samples'] * GOAL['epochs'] * FULL['n_train'] / GOAL['minutes'] / 60:.0f}"
          f" img/s end to end; projections use this run's data size ({size['n_train']} images)"
          + ("" if size["n_train"] == FULL["n_train"] else ", a smoke run: read no figure from it"))
    print(f"one run, n = 1 per path (the ratios carry this machine's noise: rerun to see it); "
          f"{time.perf_counter() - t_start:.0f}s in all")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
