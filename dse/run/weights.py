"""A sweep folder's kept weights (weights/<id>.pt): one as a model file (`dse export`), and all of them evaluated at
other test sizes, optionally fine-tuned there (`dse fixres`). Both read the folder's results table and, where a row
lacks them, the experiment it was made from."""
from __future__ import annotations

from pathlib import Path

from ..errors import DseError
from ..models.config import check_prefix, checked_id, is_id
from ..models.export import read, save_model, weights_name
from ..results import load_results
from ..train.fixres import check_sizes, errors_at, evaluate, finetune, load_model
from .experiment import saved


def _row(run: Path, sid: str | None, best: bool) -> dict:
    """The results row of `sid` (a unique id prefix) or of the best finished model of a sweep folder."""
    if not best:
        check_prefix(sid)
    df = load_results(run)
    df = df[(df["repeat"] == 0)]
    if best:
        ok = df[(df["status"] == "ok") & df["error"].notna()].sort_values(["error", "id"])
        if not len(ok):
            raise DseError(f"{run}: no finished model to export")
        return ok.iloc[0].to_dict()
    hit = df[df["id"].astype(str).str.startswith(sid)]
    if len(hit) != 1:
        what = "no model" if not len(hit) else f"{len(hit)} models ({', '.join(hit['id'][:4])})"
        raise DseError(f"{run}: {what} with id {sid!r}")
    return hit.iloc[0].to_dict()


def export(run: str | Path, id: str | None = None, best: bool = False, out: str | Path | None = None,
           force: bool = False) -> Path:
    """One model file from a sweep folder's kept weights: the weights, the config record, the recipe and data it was
    trained with, and its result row (error, epochs...). Loads back with dse.load_model(path)."""
    run = Path(run)
    if (id is None) == (not best):
        raise DseError("give one of --id ID or --best")
    if not run.is_dir():
        raise DseError(f"{run}: not a sweep folder")
    r = _row(run, id, best)
    w = run / "weights" / f"{checked_id(r, run)}.pt"
    if not w.is_file():
        raise DseError(f"{w}: no kept weights for {r['id']} (sweeps keep them with trial.keep_weights: true)")
    m = read(w)
    data = r.get("data") if isinstance(r.get("data"), dict) else None
    recipe = r.get("recipe") if isinstance(r.get("recipe"), dict) else None
    if data is None or recipe is None:  # a table from before rows carried them: the sweep's experiment
        d = saved(run).to_dict()
        data, recipe = data or d.get("data"), recipe or d.get("train")
    net = dict(m["net"])
    res = r.get("train_res")
    if res is not None and res == res:  # not NaN
        net.setdefault("res", int(res))
    result = {k: r[k] for k in ("error", "best_error", "epochs", "seed", "flops", "params", "acts", "exp",
                                "train_res", "train_flops", "train_params") if k in r}
    return save_model(Path(out) if out else Path(f"{r['id']}.pt"), m, net, recipe, data, result, force)


def fixres(run: str | Path, sizes, ids=None, top: int | None = None, tune_epochs: int = 0, data=None,
           arm: str | None = None):
    """Per model: the error at each test size, the best size, and (with tune_epochs) the fine-tuned error."""
    import pandas as pd

    from ..data import load_data

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
