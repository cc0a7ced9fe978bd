"""Train and evaluate one classification network on in-memory Data (SGD, warm-up + cosine schedule).

The data lives on the training device as uint8 when it fits; each batch is drawn by indexing there, normalised and
augmented there. Loss and accuracy are accumulated as device tensors and read once per epoch; divergence is checked
every CHECK_EVERY steps and at the epoch's end. Mixed precision (bf16, or fp16 with a gradient scaler),
channels_last and torch.compile are options; none of them needs a GPU."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict
from typing import Callable

import torch
import torch.nn.functional as F

from dse.data import Data, train_batches, val_batches
from dse.errors import DseError
from dse.train.recipe import Recipe
from dse.train.progressive import mixup, randaugment, schedule, set_dropout

CL = torch.channels_last  # NHWC: oneDNN's and cuDNN's fast layout for convolutions (about 1.5x on this CPU)
CHECK_EVERY = 50  # steps between divergence checks (each one reads a device value on the host)
AMP = {"bf16": torch.bfloat16, "fp16": torch.float16}


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


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, amp: str):
    """torch.autocast for `amp` (bf16 / fp16) on the device's type; disabled for none."""
    return torch.autocast(device.type, dtype=AMP.get(amp, torch.bfloat16), enabled=amp in AMP)


def evaluate(model: torch.nn.Module, data: Data, batch_size: int = 512, res: int | None = None, view=None,
             amp: str = "none", net=None) -> float:
    """Top-1 error % on the validation set, seen through the test view `view` (resize, crop; None: a plain
    resize) at `res` (default data.res: FixRes's test sizes use the same view at each size). `net` is the module to
    call (a compiled wrapper of `model`), default the model itself."""
    dev, was = model_device(model), model.training
    model.eval()
    wrong = torch.zeros((), dtype=torch.int64, device=dev)
    with torch.inference_mode(), autocast(dev, amp):
        for x, y in val_batches(data, batch_size, size=res, view=view, device=dev):
            out = (net or model)(x.contiguous(memory_format=CL))
            wrong += (out.argmax(1) != y).sum()
    model.train(was)
    return 100.0 * int(wrong) / max(1, data.n_val)


def detached(obj):
    """A copy of nested dicts/lists/tuples with every tensor cloned to the CPU (faster than copy.deepcopy)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: detached(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(detached(v) for v in obj)
    return copy.copy(obj)


def snapshot(model, opt, gen: torch.Generator, epoch: int, history: list, recipe: Recipe, seed: int,
             wall: float, scaler=None) -> dict:
    """A detached checkpoint dict that `train(resume=...)` continues from exactly."""
    return {
        "epoch": epoch,
        "model": detached(model.state_dict()),
        "optimizer": detached(opt.state_dict()),
        "generator": gen.get_state().cpu(),
        "rng": torch.get_rng_state(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
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


def result(status: str, reason: str | None, history: list, wall: float, seed: int, **extra) -> dict:
    """The summary dict returned by train."""
    errs = [h["val_error"] for h in history]
    return {
        "status": status, "reason": reason,
        "error": errs[-1] if errs else None, "best_error": min(errs) if errs else None,
        "epochs": history, "wall": wall, "seed": seed, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "dse": version(), **extra,
    }


def place(data: Data, device: torch.device, headroom: float = 0.5, budget: int | None = None) -> Data:
    """The data on the training device when it fits in the device's free memory, or in `budget` bytes (a packed
    trial's share of the GPU) when that is less, leaving `headroom` of it for the model; else where it is (each batch
    is then copied to the device through pinned memory)."""
    if data.device == device:
        return data
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if data.nbytes > min(free, budget or free) * (1 - headroom):
            return data
    return data.to(device)


class Compiled:
    """Timing of torch.compile: the first step at each new input shape (train and eval) pays its compilation."""

    def __init__(self, net, on: bool, backend: str = "inductor"):
        self.on = on
        self.fn = torch.compile(net, backend=backend) if on else net
        self.seen: set = set()
        self.first = 0.0  # seconds spent in first steps
        self.steps = 0  # how many first steps

    def is_first(self, key) -> bool:
        if not self.on or key in self.seen:
            return False
        self.seen.add(key)
        return True


def train(model: torch.nn.Module | Callable[[], torch.nn.Module], data: Data, recipe: Recipe, *, seed: int = 0,
          threads: int | None = None, device: str = "cpu", on_epoch: Callable[[dict, dict], None] | None = None,
          resume: dict | None = None, progressive=None, view=None, compile: bool | str = False) -> dict:
    """Train with SGD (weight decay on all parameters) and return metrics; pass a zero-arg model builder
    (preferred: it is called right after torch.manual_seed(seed)) or a module built after seeding yourself.

    `recipe.augment` is the training view and `view` the test view (dse.train.recipe.Eval; None: a plain resize).
    `progressive` (a dse.train.recipe.Progressive) raises image size, dropout, RandAugment magnitude and mixup
    alpha together over its stages; each epoch's settings are recorded with its metrics. `compile`: torch.compile
    the model (True: inductor, or a backend name); its compilation time is returned apart (`compile_time`)."""
    t0 = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(int(threads))
    dev = torch.device(device)
    torch.manual_seed(seed)
    net = model if isinstance(model, torch.nn.Module) else model()
    if not isinstance(net, torch.nn.Module):
        raise DseError(f"train: model must be a torch.nn.Module or a callable returning one, got {type(net).__name__}")
    net.to(dev, memory_format=CL)
    data = place(data, dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=recipe.peak_lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov and recipe.momentum > 0, weight_decay=recipe.wd)
    scaler = torch.amp.GradScaler(dev.type, enabled=recipe.amp == "fp16")
    start, history, prior = 0, [], 0.0
    if resume is not None:
        start = check_resume(resume, recipe, seed)
        net.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"])
        torch.set_rng_state(resume["rng"])
        if resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        history, prior = copy.deepcopy(resume["history"]), float(resume.get("wall", 0.0))
    comp = Compiled(net, bool(compile), compile if isinstance(compile, str) else "inductor")
    spe = steps_per_epoch(data.n_train, recipe.batch_size)
    total, warm = recipe.epochs * spe, round(recipe.warmup * spe)
    plan = schedule(progressive, recipe.epochs, data.res) if progressive is not None else None
    ls = recipe.label_smoothing
    for epoch in range(start + 1, recipe.epochs + 1):
        te = time.perf_counter()
        net.train()
        sched = plan[epoch - 1] if plan else None
        if sched:
            set_dropout(net, sched["dropout"])
        loss_sum = torch.zeros((), device=dev)
        wrong = torch.zeros((), dtype=torch.int64, device=dev)
        bad = torch.full((), -1, dtype=torch.int64, device=dev)  # the first step whose loss was not finite
        seen, lr, first = 0, 0.0, 0.0
        for i, (x, y) in enumerate(train_batches(data, recipe.batch_size, gen, aug=recipe.augment,
                                                 size=sched["res"] if sched else None, device=dev)):
            lr = lr_at((epoch - 1) * spe + i, total, warm, recipe.peak_lr)
            for g in opt.param_groups:
                g["lr"] = lr
            y2, lam = y, 1.0
            if sched:
                x = randaugment(x, sched["randaug"], gen)
                x, y, y2, lam = mixup(x, y, sched["mixup"], gen)
            timed = comp.is_first(("train", tuple(x.shape)))
            if timed:
                sync(dev)
                ts = time.perf_counter()
            with autocast(dev, recipe.amp):
                out = comp.fn(x.contiguous(memory_format=CL))
                loss = F.cross_entropy(out, y, label_smoothing=ls)
                if lam < 1.0:
                    loss = lam * loss + (1 - lam) * F.cross_entropy(out, y2, label_smoothing=ls)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if timed:
                sync(dev)
                first += time.perf_counter() - ts
                comp.steps += 1
            loss = loss.detach().float()
            bad = torch.where((bad < 0) & ~torch.isfinite(loss), i, bad)
            loss_sum += loss * len(y)
            wrong += (out.detach().argmax(1) != y).sum()
            seen += len(y)
            if (i + 1) % CHECK_EVERY == 0 and int(bad) >= 0:
                break
        k = int(bad)
        if k >= 0:
            wall = prior + time.perf_counter() - t0
            return result("failed", f"loss diverged ({float(loss_sum)}) at epoch {epoch}, step {k + 1}", history,
                          wall, seed, compile_time=comp.first)
        sync(dev)  # the epoch's queued steps are done before it is timed (one wait per epoch)
        tt = time.perf_counter() - te - first
        comp.first += first
        first_eval = comp.is_first(("eval", data.res))
        tv = time.perf_counter()
        val = evaluate(net, data, view=view, amp=recipe.amp, net=comp.fn if comp.on else None)
        if first_eval:
            comp.first += time.perf_counter() - tv
        m = {"epoch": epoch, "train_loss": float(loss_sum) / seen, "train_error": 100.0 * int(wrong) / seen,
             "val_error": val, "lr": lr, "time": time.perf_counter() - te, "train_time": tt,
             "ips": seen / tt if tt > 0 else 0.0}
        if sched:
            m.update({k: sched[k] for k in ("stage", "res", "dropout", "randaug", "mixup")})
        history.append(m)
        if on_epoch is not None:
            wall = prior + time.perf_counter() - t0
            on_epoch(dict(m), snapshot(net, opt, gen, epoch, history, recipe, seed, wall, scaler))
    wall = prior + time.perf_counter() - t0
    return result("ok", None, history, wall, seed, compile_time=comp.first if comp.on else None)
