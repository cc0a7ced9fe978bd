"""FixRes (Touvron et al. 2019): evaluate a trained model at several test resolutions, and optionally fine-tune
its classifier (plus the BN statistics of the last stage) at the chosen test size."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..models.config import checked_id, is_id
from ..errors import DseError
from ..models.export import load_model as _load
from ..models.export import read
from ..models.export import save_weights  # noqa: F401  (the sweep's writer of weights/<id>.pt)
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


def fixres(run: str | Path, sizes, ids=None, top: int | None = None, tune_epochs: int = 0, data=None,
           arm: str | None = None):
    """Per model: the error at each test size, the best size, and (with tune_epochs) the fine-tuned error."""
    import pandas as pd

    from ..data import load_data
    from ..run.experiment import saved
    from ..results import load_results

    run = Path(run)
    sizes = check_sizes(sizes)
    if not run.exists():
        raise DseError(f"{run}: no such sweep folder or checkpoint file")
    if run.is_file():
        files, folder = [run], run.parent.parent
    else:
        wdir = run / "weights"
        if not wdir.is_dir():
            raise DseError(f"{run}: no kept weights (run the sweep with trial.keep_weights: true)")
        from ..models.export import weights_name

        df = load_results(run)
        ok = df[(df["status"] == "ok") & (df["repeat"] == 0)].sort_values("error")
        if "arm" in ok.columns and ok["arm"].notna().any():
            arm = arm or str(ok["arm"].dropna().iloc[0])
            ok = ok[ok["arm"].astype(str) == arm]
        bad = [i for i in ids or () if not is_id(i)]
        if bad:  # ids name files: well-formed ones only
            raise DseError(f"--id: {bad[0]!r} is not a sample id (12 hexadecimal digits)")
        if ids:
            chosen = list(ids)
        else:
            chosen = [checked_id(r, run) for r in ok.iloc[: top or len(ok)].to_dict("records")]
        files = [wdir / weights_name(i, arm) for i in chosen]
        if not files:
            raise DseError(f"{run}: no finished trials to evaluate")
        folder = run
    exp = saved(folder).arm(arm) if data is None or (folder / "experiment.yaml").is_file() else None
    spec, view, cache = (exp.data if data is None else None), (exp.eval if exp else None), {}

    def data_at(res: int):  # data.res: net trains each model at its own resolution
        if spec.name == "imagefolder" and res not in cache:  # decoded at its training size
            cache[res] = load_data(**spec.args(res))
        if spec.name != "imagefolder" and "all" not in cache:  # stored at their own size: one load
            cache["all"] = load_data(**spec.args(res))
        return cache.get(res) or cache["all"].at(res)

    rows = []
    for f in files:
        cfg = read(f)["config"]
        d = data if data is not None else data_at(cfg.net.res if spec.res == "net" else int(spec.res))
        _, model = load_model(f, d.res, d.classes)
        if model.net.in_ch != d.channels:
            raise DseError(f"{f}: the model takes {model.net.in_ch} input channels but {d.name} has {d.channels} "
                           "(weights kept before dse 0.3 trained digits as 3 channels)")
        errs = errors_at(model, d, sizes, view)
        best = min(errs, key=errs.get)
        at_train = errs[d.res] if d.res in errs else evaluate(model, d, view=view)
        row = {"id": cfg.id, "space": cfg.space, "train_res": d.res, **{f"err@{s}": e for s, e in errs.items()},
               "best_test_size": best, "best_test_error": errs[best], "gain": at_train - errs[best]}
        if tune_epochs:
            stage = f"s{len(cfg.net.stages)}"
            finetune(model, d, best, tune_epochs, stage=stage, view=view)
            row.update(tuned_stage=stage, tuned_error=evaluate(model, d, res=best, view=view))
            row["tune_gain"] = errs[best] - row["tuned_error"]
        rows.append(row)
    return pd.DataFrame(rows)
