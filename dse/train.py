"""Train and evaluate one classification network on in-memory Data (SGD, warm-up + cosine schedule)."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict
from typing import Callable

import torch
import torch.nn.functional as F

from dse.data import Data, batches, resize
from dse.errors import DseError
from dse.experiment import Recipe
from dse.progressive import mixup, randaugment, resize_batch, schedule, set_dropout

CL = torch.channels_last  # NHWC: oneDNN's fast layout for convolutions on the CPU (about 1.5x here)


def lr_at(step: int, total: int, warm: int, peak: float) -> float:
    """Lr for 0-based iteration `step` of `total`: linear warm-up over `warm` steps, then cosine decay to 0."""
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Number of training batches per epoch (the last partial batch is dropped unless it is the only one)."""
    return max(1, n // batch_size)


def version() -> str:
    """dse's version (the one in pyproject.toml; a test keeps them equal)."""
    from dse import __version__

    return __version__


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter (cpu if it has none)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def evaluate(model: torch.nn.Module, data: Data, batch_size: int = 512, res: int | None = None) -> float:
    """Top-1 error % on the validation set, optionally resizing images to res (FixRes test resolution)."""
    dev, was = model_device(model), model.training
    model.eval()
    wrong = 0
    with torch.inference_mode():
        for x, y in batches(data, batch_size, train=False):
            x = resize(x, res) if res else x
            wrong += int((model(x.to(dev, memory_format=CL)).argmax(1).cpu() != y).sum())
    model.train(was)
    return 100.0 * wrong / max(1, data.n_val)


def detached(obj):
    """A copy of nested dicts/lists/tuples with every tensor cloned (several times faster than copy.deepcopy)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: detached(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(detached(v) for v in obj)
    return copy.copy(obj)


def snapshot(model, opt, gen: torch.Generator, epoch: int, history: list, recipe: Recipe, seed: int,
             wall: float) -> dict:
    """A detached checkpoint dict that `train(resume=...)` continues from exactly."""
    return {
        "epoch": epoch,
        "model": detached(model.state_dict()),
        "optimizer": detached(opt.state_dict()),
        "generator": gen.get_state(),
        "rng": torch.get_rng_state(),
        "history": copy.deepcopy(history),
        "recipe": asdict(recipe),
        "seed": seed,
        "wall": wall,
    }


def check_resume(state: dict, recipe: Recipe, seed: int) -> int:
    """Validate a resume checkpoint against the recipe and seed; return its epoch."""
    need = {"epoch", "model", "optimizer", "generator", "rng", "history", "recipe"}
    missing = sorted(need - set(state))
    if missing:
        raise DseError(f"resume checkpoint is missing keys: {', '.join(missing)}")
    if state["recipe"] != asdict(recipe):
        raise DseError(f"resume checkpoint recipe {state['recipe']} differs from {asdict(recipe)}")
    if state.get("seed", seed) != seed:
        raise DseError(f"resume checkpoint seed {state['seed']} differs from seed {seed}")
    e = state["epoch"]
    if not isinstance(e, int) or not 0 <= e <= recipe.epochs:
        raise DseError(f"resume checkpoint epoch {e!r} is not in 0..{recipe.epochs}")
    return e


def result(status: str, reason: str | None, history: list, wall: float, seed: int) -> dict:
    """The summary dict returned by train."""
    errs = [h["val_error"] for h in history]
    return {
        "status": status, "reason": reason,
        "error": errs[-1] if errs else None, "best_error": min(errs) if errs else None,
        "epochs": history, "wall": wall, "seed": seed, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "dse": version(),
    }


def train(model: torch.nn.Module | Callable[[], torch.nn.Module], data: Data, recipe: Recipe, *, seed: int = 0,
          threads: int | None = None, device: str = "cpu", on_epoch: Callable[[dict, dict], None] | None = None,
          resume: dict | None = None, progressive=None) -> dict:
    """Train with SGD (weight decay on all parameters) and return metrics; pass a zero-arg model builder
    (preferred: it is called right after torch.manual_seed(seed)) or a module built after seeding yourself.

    `progressive` (a dse.progressive.Progressive) raises image size, dropout, RandAugment magnitude and mixup
    alpha together over its stages; each epoch's settings are recorded with its metrics."""
    t0 = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    net = model if isinstance(model, torch.nn.Module) else model()
    if not isinstance(net, torch.nn.Module):
        raise DseError(f"train: model must be a torch.nn.Module or a callable returning one, got {type(net).__name__}")
    net.to(device, memory_format=CL)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=recipe.peak_lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov and recipe.momentum > 0, weight_decay=recipe.wd)
    start, history, prior = 0, [], 0.0
    if resume is not None:
        start = check_resume(resume, recipe, seed)
        net.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"])
        torch.set_rng_state(resume["rng"])
        history, prior = copy.deepcopy(resume["history"]), float(resume.get("wall", 0.0))
    spe = steps_per_epoch(data.n_train, recipe.batch_size)
    total, warm = recipe.epochs * spe, round(recipe.warmup * spe)
    plan = schedule(progressive, recipe.epochs, data.res) if progressive is not None else None
    for epoch in range(start + 1, recipe.epochs + 1):
        te = time.perf_counter()
        net.train()
        sched = plan[epoch - 1] if plan else None
        if sched:
            set_dropout(net, sched["dropout"])
        loss_sum, wrong, seen, lr = 0.0, 0, 0, 0.0
        for i, (x, y) in enumerate(batches(data, recipe.batch_size, train=True, generator=gen, pad=None)):
            lr = lr_at((epoch - 1) * spe + i, total, warm, recipe.peak_lr)
            for g in opt.param_groups:
                g["lr"] = lr
            y2, lam = y, 1.0
            if sched:
                x = randaugment(resize_batch(x, sched["res"]), sched["randaug"], gen)
                x, y, y2, lam = mixup(x, y, sched["mixup"], gen)
            x, y, y2 = x.to(device, memory_format=CL), y.to(device), y2.to(device)
            out = net(x)
            loss = F.cross_entropy(out, y, label_smoothing=recipe.label_smoothing)
            if lam < 1.0:
                loss = lam * loss + (1 - lam) * F.cross_entropy(out, y2, label_smoothing=recipe.label_smoothing)
            v = loss.item()
            if not math.isfinite(v):
                wall = prior + time.perf_counter() - t0
                return result("failed", f"loss diverged ({v}) at epoch {epoch}, step {i + 1}", history, wall, seed)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += v * len(y)
            wrong += int((out.detach().argmax(1) != y).sum())
            seen += len(y)
        tt = time.perf_counter() - te
        val = evaluate(net, data)
        m = {"epoch": epoch, "train_loss": loss_sum / seen, "train_error": 100.0 * wrong / seen,
             "val_error": val, "lr": lr, "time": time.perf_counter() - te, "ips": seen / tt if tt > 0 else 0.0}
        if sched:
            m.update({k: sched[k] for k in ("stage", "res", "dropout", "randaug", "mixup")})
        history.append(m)
        if on_epoch is not None:
            wall = prior + time.perf_counter() - t0
            on_epoch(dict(m), snapshot(net, opt, gen, epoch, history, recipe, seed, wall))
    return result("ok", None, history, prior + time.perf_counter() - t0, seed)
