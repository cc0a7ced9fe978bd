"""FixRes (Touvron et al. 2019): evaluate a trained model at several test resolutions, and optionally fine-tune
its classifier (plus the BN statistics of the last stage) at the chosen test size. A sweep folder's kept weights
are evaluated by dse.run.weights.fixres."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DseError
from ..models.export import load_model as _load
from .loop import evaluate


def check_sizes(sizes) -> list[int]:
    """Positive integer test sizes."""
    out = []
    for s in sizes:
        try:
            v = int(s)
        except (TypeError, ValueError):
            raise DseError(f"test sizes must be positive integers, got {s!r}") from None
        if v <= 0 or float(s) != v:
            raise DseError(f"test sizes must be positive integers, got {s!r}")
        out.append(v)
    if not out:
        raise DseError("give at least one test size")
    return out


def errors_at(model, data, sizes, view=None) -> dict[int, float]:
    """Top-1 validation error (%) at each test resolution, through the test view (dse.train.recipe.Eval)."""
    return {s: evaluate(model, data, res=s, view=view) for s in check_sizes(sizes)}


def tuned_errors(model, data, sizes, exp, seed: int = 0) -> dict[int, float]:
    """Per test size: the error after FixRes fine-tuning at that size (trial.finetune epochs), each from a copy of
    the trained model, through the experiment's test view."""
    import copy

    out = {}
    for s in check_sizes(sizes):
        m = finetune(copy.deepcopy(model), data, s, exp.trial.finetune, seed=seed, view=exp.eval)
        out[s] = evaluate(m, data, res=s, view=exp.eval)
    return out


def load_model(path: str | Path, data_res: int | None = None, classes: int | None = None,
               dropout: float | None = None):
    """(Config, model) from a kept-weights or exported model file, built at the data's res and classes when given;
    a file whose weights do not fit its config is an error."""
    kw = {k: v for k, v in (("res", data_res), ("classes", classes), ("dropout", dropout)) if v is not None}
    model = _load(path, **kw)
    return model.config, model


def finetune(model, data, size: int, epochs: int = 2, lr: float = 0.01, batch_size: int = 128, seed: int = 0,
             stage: str | None = None, view=None, label_smoothing: float = 0.1):
    """FixRes fine-tuning at the test size (Touvron et al. 2019, Sec. 4): only the classifier learns (SGD,
    momentum 0.9, label smoothing 0.1); the BN layers of `stage` (default the last, e.g. 's4') and of the head
    re-estimate their running statistics; training images get the test-time view (`view`, a dse.train.recipe.Eval;
    None: a plain resize) at `size`, plus the data set's flips."""
    from ..data import eval_view, normalise
    from ..data.core import take
    from .loop import model_device, place

    dev = model_device(model)  # fine-tuned where the model lives, the data placed there when it fits
    data = place(data, dev)
    stages = [n for n, _ in model.named_children() if n[0] == "s" and n[1:].isdigit()]
    stage = stage or stages[-1]
    if stage not in stages:
        raise DseError(f"finetune: no stage {stage!r} (the model has {', '.join(stages)})")
    torch.manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    fc = model.head.fc
    for p in fc.parameters():
        p.requires_grad_(True)
    tail = [getattr(model, stage), model.head]
    opt = torch.optim.SGD(fc.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator(device=dev).manual_seed(seed)
    ratio, crop = (1.0, "none") if view is None else (view.resize, view.crop)
    mean, std = data.mean.to(dev), data.std.to(dev)
    n = data.n_train
    for _ in range(epochs):
        model.eval()
        for t in tail:
            for m in t.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.train()
        order = torch.randperm(n, generator=gen, device=dev).to(data.device)
        for i in range(0, n - n % batch_size if n >= batch_size else n, batch_size):
            idx = order[i:i + batch_size]
            x = eval_view(normalise(take(data.x_train, idx, dev), mean, std), size, ratio, crop)
            if data.flip:
                x = torch.where((torch.rand(len(x), generator=gen, device=dev) < 0.5).view(-1, 1, 1, 1), x.flip(-1), x)
            y = take(data.y_train, idx, dev)
            loss = F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model
