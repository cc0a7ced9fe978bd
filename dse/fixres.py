"""FixRes (Touvron et al. 2019): evaluate a trained model at several test resolutions, and optionally fine-tune
its classifier (plus the BN statistics of the last stage) at the chosen test size."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .config import Config
from .errors import DseError
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


def save_weights(path: Path, rec: dict, state: dict) -> None:
    """Final weights of a trial with the record that built them (a weights-only torch file)."""
    import json
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save({"record": json.dumps(rec, sort_keys=True), "model": state}, tmp)
    os.replace(tmp, path)


def load_model(path: str | Path, data_res: int, classes: int, dropout: float | None = None):
    """(Config, model) from a saved weights file; a file whose weights do not fit its config is an error."""
    import json

    from .models import build

    p = Path(path)
    if not p.is_file():
        raise DseError(f"{p}: no such checkpoint")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
        cfg = Config.from_dict(json.loads(blob["record"]))
    except Exception as e:
        raise DseError(f"{p}: not a dse checkpoint ({type(e).__name__})") from None
    kw = {"res": data_res, "classes": classes}
    if dropout is not None:
        kw["dropout"] = dropout
    model = build(cfg.net, **kw)
    try:
        model.load_state_dict(blob["model"], strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "shape mismatch"
        raise DseError(f"{p}: checkpoint does not match its config {cfg.id} ({first[:160]})") from None
    return cfg, model


def finetune(model, data, size: int, epochs: int = 2, lr: float = 0.01, batch_size: int = 128, seed: int = 0):
    """FixRes fine-tuning at the test size: only the classifier learns; BN layers of the last stage (and head)
    update their running statistics; inputs get the test-time preprocessing (a plain resize)."""
    from .data import batches
    from .progressive import resize_batch

    torch.manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    fc = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    for p in fc.parameters():
        p.requires_grad_(True)
    tail = list(model.children())[-2:]  # the last stage block and the head
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
    import yaml

    from .data import load_data
    from .results import load_results

    run = Path(run)
    sizes = check_sizes(sizes)
    if not run.exists():
        raise DseError(f"{run}: no such sweep folder or checkpoint file")
    if run.is_file():
        files = [run]
        exp_file = run.parent.parent / "experiment.yaml"
    else:
        wdir = run / "weights"
        if not wdir.is_dir():
            raise DseError(f"{run}: no kept weights (run the sweep with trial.keep_weights: true)")
        df = load_results(run)
        ok = df[df["status"] == "ok"].sort_values("error")
        chosen = list(ids) if ids else list(ok["id"][: top or len(ok)])
        files = [wdir / f"{i}.pt" for i in chosen]
        if not files:
            raise DseError(f"{run}: no finished trials to evaluate")
        exp_file = run / "experiment.yaml"
    if data is None:
        if not exp_file.is_file():
            raise DseError(f"{exp_file}: the sweep's experiment file is missing; cannot tell which data to use")
        d = yaml.safe_load(exp_file.read_text())["data"]
        data = load_data(**{k: v for k, v in d.items() if k in ("name", "path", "res", "val_frac")})
    rows = []
    for f in files:
        cfg, model = load_model(f, data.res, data.classes)
        errs = errors_at(model, data, sizes)
        best = min(errs, key=errs.get)
        row = {"id": cfg.id, "space": cfg.space, "train_res": data.res, **{f"err@{s}": e for s, e in errs.items()},
               "best_size": best, "best_error": errs[best], "gain": errs.get(data.res, evaluate(model, data)) - errs[best]}
        if tune_epochs:
            finetune(model, data, best, tune_epochs)
            row["tuned_error"] = evaluate(model, data, res=best)
            row["tune_gain"] = errs[best] - row["tuned_error"]
        rows.append(row)
    return pd.DataFrame(rows)
