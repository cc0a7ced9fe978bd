"""FixRes (Touvron et al. 2019): evaluate a trained model at several test resolutions, and optionally fine-tune
its classifier (plus the BN statistics of the last stage) at the chosen test size."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .config import checked_id, is_id
from .errors import DseError
from .models.export import load_model as _load
from .models.export import read
from .models.export import save_weights  # noqa: F401  (the sweep's writer of weights/<id>.pt)
from .train import evaluate


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


def errors_at(model, data, sizes) -> dict[int, float]:
    """Top-1 validation error (%) at each test resolution."""
    return {s: evaluate(model, data, res=s) for s in check_sizes(sizes)}


def load_model(path: str | Path, data_res: int | None = None, classes: int | None = None,
               dropout: float | None = None):
    """(Config, model) from a kept-weights or exported model file, built at the data's res and classes when given;
    a file whose weights do not fit its config is an error."""
    kw = {k: v for k, v in (("res", data_res), ("classes", classes), ("dropout", dropout)) if v is not None}
    model = _load(path, **kw)
    return model.config, model


def finetune(model, data, size: int, epochs: int = 2, lr: float = 0.01, batch_size: int = 128, seed: int = 0,
             stage: str | None = None):
    """FixRes fine-tuning at the test size: only the classifier learns; the BN layers of `stage` (default the last,
    e.g. 's4') and of the head update their running statistics; inputs get the test-time preprocessing (a plain
    resize)."""
    from .data import batches
    from .progressive import resize_batch

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
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.eval()
        for t in tail:
            for m in t.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.train()
        for x, y in batches(data, batch_size, train=True, generator=gen, pad=0):
            loss = F.cross_entropy(model(resize_batch(x, size)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model


def fixres(run: str | Path, sizes, ids=None, top: int | None = None, tune_epochs: int = 0, data=None):
    """Per model: the error at each test size, the best size, and (with tune_epochs) the fine-tuned error."""
    import pandas as pd

    from .data import load_data
    from .experiment import saved
    from .results import load_results

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
        df = load_results(run)
        ok = df[(df["status"] == "ok") & (df["repeat"] == 0)].sort_values("error")
        bad = [i for i in ids or () if not is_id(i)]
        if bad:  # ids name files: well-formed ones only
            raise DseError(f"--id: {bad[0]!r} is not a sample id (12 hexadecimal digits)")
        if ids:
            chosen = list(ids)
        else:
            chosen = [checked_id(r, run) for r in ok.iloc[: top or len(ok)].to_dict("records")]
        files = [wdir / f"{i}.pt" for i in chosen]
        if not files:
            raise DseError(f"{run}: no finished trials to evaluate")
        folder = run
    spec, cache = (saved(folder).data if data is None else None), {}

    def data_at(res: int):  # data.res: net trains each model at its own resolution
        if res not in cache:
            cache[res] = load_data(**spec.args(res))
        return cache[res]

    rows = []
    for f in files:
        cfg = read(f)["config"]
        d = data if data is not None else data_at(cfg.net.res if spec.res == "net" else int(spec.res))
        _, model = load_model(f, d.res, d.classes)
        errs = errors_at(model, d, sizes)
        best = min(errs, key=errs.get)
        at_train = errs[d.res] if d.res in errs else evaluate(model, d)
        row = {"id": cfg.id, "space": cfg.space, "train_res": d.res, **{f"err@{s}": e for s, e in errs.items()},
               "best_test_size": best, "best_test_error": errs[best], "gain": at_train - errs[best]}
        if tune_epochs:
            stage = f"s{len(cfg.net.stages)}"
            finetune(model, d, best, tune_epochs, stage=stage)
            row.update(tuned_stage=stage, tuned_error=evaluate(model, d, res=best))
            row["tune_gain"] = errs[best] - row["tuned_error"]
        rows.append(row)
    return pd.DataFrame(rows)
