"""Fused-MBConv against MBConv in the early stages, on this CPU: python benchmarks/bench_fused.py [--res 64]
[--batch 32] [--threads 1] [--repeats 5].

EfficientNetV2 (Tan & Le 2021, Table 3) replaces the 1x1 expansion + depthwise kxk conv of MBConv by one dense kxk
conv (Fused-MBConv) in the early stages: more FLOPs and params, but faster on TPUs and V100s (EfficientNet-B4 with
Fused stages 1-3: 216 against 155 images/s on a V100, 362 against 262 on a TPU). This benchmark asks the same of
this CPU, at equal output: the EfficientNetV2-S backbone (its stage widths, depths, strides) built twice, with stages
1-3 as Fused-MBConv (the published V2-S) and as MBConv (same expansion and kernel, SE 0.25), the later stages
unchanged. Per variant it prints params, multiply-adds at the given resolution, and the median training-step time
(forward + backward + SGD step, one thread, batch B) of the whole network and of stages 1-3 alone (the same step
on the stem's output). The ratio mb / fmb > 1 means Fused-MBConv is faster here."""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import dse
from dse.models.complexity import complexity
from dse.space.units import fmt


def variant(block: str, res: int):
    """V2-S with `block` in stages 1-3 (its own fields otherwise)."""
    return dse.describe("efficientnetv2", block=[block] * 3 + ["mb"] * 3, k=[3] * 6, e=[1, 4, 4, 4, 6, 6],
                        d=[2, 4, 4, 6, 9, 15], res=res, dropout=0.0)


def step_time(net, x, y, repeats: int) -> float:
    """Median seconds of a training step (forward, loss, backward, SGD step)."""
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    out = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        loss = F.cross_entropy(net(x), y) if y is not None else net(x).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:  # the first step warms the allocator and oneDNN's caches
            out.append(time.perf_counter() - t)
    return statistics.median(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(a.batch, 3, a.res, a.res).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (a.batch,))
    print(f"EfficientNetV2-S backbone, stages 1-3 as Fused-MBConv or MBConv, {a.res} px, batch {a.batch}, "
          f"{a.threads} thread(s), median of {a.repeats} training steps; the machine may be shared: read the ratios")
    print("| stages 1-3 | params | multiply-adds | step s (whole net) | img/s | stages 1-3 step s |")
    print("|---|---|---|---|---|---|")
    res = {}
    for block in ("fmb", "mb"):
        s = variant(block, a.res)
        net = dse.build(s.config, classes=10).to(memory_format=torch.channels_last)
        cx = complexity(s.config.net.replace(classes=10))
        whole = step_time(net, x, y, a.repeats)
        stem_out = net.stem(x).detach()
        early = torch.nn.Sequential(net.s1, net.s2, net.s3)
        part = step_time(early, stem_out, None, a.repeats)
        res[block] = (whole, part)
        print(f"| {'Fused-MBConv' if block == 'fmb' else 'MBConv'} | {fmt(cx.params)} | {fmt(cx.flops)} | "
              f"{whole:.3f} | {a.batch / whole:.0f} | {part:.3f} |")
    print(f"mb / fmb step time: whole network {res['mb'][0] / res['fmb'][0]:.2f}x, stages 1-3 "
          f"{res['mb'][1] / res['fmb'][1]:.2f}x (> 1: Fused-MBConv is faster on this CPU)")


if __name__ == "__main__":
    main()
