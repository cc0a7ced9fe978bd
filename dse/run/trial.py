"""One Ray Tune trial: train one sample (one seed of one model), report every epoch with a checkpoint, then its row.

Runs in a Ray worker. It knows how to train and how to record, not how the sweep is driven."""
from __future__ import annotations

import dataclasses
import json
import tempfile
from functools import lru_cache
from pathlib import Path

from ..models.config import Config
from .experiment import DataSpec, Experiment, Reward
from .plan import trial_seed
from ..models.export import weights_name  # noqa: F401  (the sweep's and fixres's name of a kept-weights file)
from ..results import row, trial_key


def reward(error: float, step_time: float, params: float, r: Reward = Reward()) -> float:
    """EfficientNetV2's training-aware reward A * S^w * P^v: accuracy, step time (s, over s_ref), params (over p_ref)."""
    return (1 - error / 100) * (step_time / r.s_ref) ** r.w * (params / r.p_ref) ** r.v


@lru_cache(maxsize=2)
def _loaded(spec: DataSpec):
    from ..data import load_data

    return load_data(**spec.args(spec.res if spec.res != "net" else 32))


def data_at(spec: DataSpec, res: int):
    """The experiment's data seen at a resolution, loaded once per worker process (the images are stored at their
    own size, so every resolution shares them), except an image folder, which is decoded at `res`."""
    if spec.name == "imagefolder":
        from ..data import load_data

        return load_data(**spec.args(res))
    return _loaded(spec).at(res)


def _state_from(path: str | None):
    import torch

    if not path:
        return None
    f = Path(path) / "state.pt"
    return torch.load(f, map_location="cpu", weights_only=True) if f.exists() else None


def _fault(key: str, faults: str | None) -> int | None:
    """Test hook (sweep's `_faults` argument, never an experiment key): the file <faults>/<key> holds how many
    more attempts of that trial raise, or `oom:K`: every attempt runs out of memory at its K-th training step
    (returned: the model's forward raises torch's OutOfMemoryError there, see _oom_at)."""
    f = Path(faults) / key if faults else None
    if f is not None and f.exists():
        text = f.read_text().strip()
        if text.startswith("oom:"):
            return int(text[4:])
        left = int(text or 0)
        if left > 0:
            f.write_text(str(left - 1))
            raise RuntimeError(f"injected fault ({left - 1} more)")
    return None


def _oom_at(step: int, make):
    """The model builder `make`, with a model whose K-th training forward raises torch's OutOfMemoryError (with
    CUDA's wording), as a step that outgrows the GPU would."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError

    def build():
        net, calls = make(), [0]

        def hook(module, args):
            if module.training:
                calls[0] += 1
                if calls[0] >= step:
                    raise oom(f"CUDA out of memory. Tried to allocate 2.00 GiB (injected at step {calls[0]}).\n"
                              "See documentation for Memory Management")
        net.register_forward_pre_hook(hook)
        return net
    return build


def _node() -> str | None:
    """The id of the Ray node running this trial (None outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def context(exp: Experiment, data=None) -> dict:
    """The columns every row of a run shares: experiment, recipe (with its augmentation), test view, data (with its
    sizes, channels and validation split once loaded), band, n."""
    d = {"name": exp.data.name, "res": exp.data.res, "val_frac": exp.data.val_frac}
    if data is not None:
        d.update(data.info())
    band = {m: list(b) for m, b in exp.bands.items()} or None
    return {"exp": exp.name, "recipe": exp.train.to_dict(), "eval": dataclasses.asdict(exp.eval), "data": d,
            "band": band, "n_planned": exp.n or None}


def _epoch_metrics(m: dict) -> dict:
    """What a trial reports per epoch (the scheduler reads val_error; the driver's live curves read them all)."""
    return {k: m[k] for k in ("epoch", "val_error", "train_error", "train_loss", "lr", "time") if k in m}


def run(config: dict, data=None) -> None:
    """The Ray Tune trainable: config holds the Experiment (`exp`), the weights folder and the point (`sample`,
    `repeat`, `resume_from`); `data` is shared by every trial unless the experiment trains at each net's res."""
    import torch
    from ray import tune

    from ..models.complexity import complexity
    from ..train.fixres import errors_at, tuned_errors
    from ..models import build
    from ..models.export import save_weights
    from .resources import Meter, cap, check_device, is_oom, oom_reason, release
    from ..train.loop import place, train

    base: Experiment = config["exp"]
    point = config["point"]
    exp = base.arm(point.get("arm"))  # an arm trains with its own sections
    rec, repeat = point["sample"], point.get("repeat", 0)
    cfg = Config.from_dict(rec)
    if data is None or exp.data != base.data:
        data = data_at(exp.data, cfg.net.res if exp.data.res == "net" else exp.data.res)
    key = trial_key(rec["id"], repeat, point.get("arm"))
    ck = tune.get_checkpoint()
    state = None
    if ck is not None:
        with ck.as_directory() as d:
            state = _state_from(d)
    elif point.get("resume_from"):
        state = _state_from(point["resume_from"])
    seed = trial_seed(exp.seed, cfg.id, repeat)
    kw = {"res": data.res, "classes": data.classes, "in_ch": data.channels}
    if exp.progressive is not None:
        kw["dropout"] = max(cfg.net.dropout, exp.progressive.dropout[1])  # a dropout layer for the schedule to drive
    tr = complexity(cfg.net.replace(**kw))
    dev, gpus = exp.trial.device_name, exp.trial.gpus
    extra = dict(train_res=data.res, train_flops=tr.flops, train_params=tr.params,
                 resumed_at=int(state["epoch"]) if state else 0, node=_node(), seed=seed, amp=exp.train.amp,
                 device=dev, gpus=gpus, **point.get("cols", {}))
    ctx = {**context(exp, data), **config.get("cols", {})}
    final = {}

    def on_epoch(m: dict, st: dict) -> None:
        final["model"] = st["model"]
        if m["epoch"] == exp.train.epochs:
            return  # the last epoch is reported once, with the row (a scheduler must not stop a finished trial)
        with tempfile.TemporaryDirectory() as d:
            torch.save(st, Path(d) / "state.pt")
            tune.report({**_epoch_metrics(m), "final": False}, checkpoint=tune.Checkpoint.from_directory(d))

    meter, share = None, None
    try:
        oom_at = _fault(key, config.get("faults"))
        extra["gpu"] = check_device(dev)
        meter = Meter(dev).start()
        share = cap(dev, gpus)  # a packed trial allocates at most its share of the GPU
        data = place(data, torch.device(dev), budget=share)  # once: for training, then the test sizes
        make = _oom_at(oom_at, lambda: build(cfg.net, **kw)) if oom_at else (lambda: build(cfg.net, **kw))
        res = train(make, data, exp.train, seed=seed, threads=exp.trial.torch_threads,
                    device=dev, on_epoch=on_epoch, resume=state, progressive=exp.progressive,
                    view=exp.eval, compile=exp.trial.compile)
        sizes, keep = exp.trial.test_sizes, exp.trial.keep_weights and repeat == 0
        if res["status"] == "ok" and (sizes or keep):
            model = build(cfg.net, **kw)
            model.load_state_dict(final.get("model") or state["model"])
            model.to(dev)  # evaluated and fine-tuned where it trained
            if sizes:
                res["test_errors"] = {str(k): v for k, v in errors_at(model, data, sizes, exp.eval).items()}
            if sizes and exp.trial.finetune:
                res["tuned_errors"] = {str(k): v for k, v in tuned_errors(model, data, sizes, exp, seed).items()}
            if keep:
                wdir = Path(config["weights_dir"])
                wdir.mkdir(parents=True, exist_ok=True)
                save_weights(wdir / weights_name(cfg.id, point.get("arm")), rec, model.state_dict(), net=kw)
        if res.get("compile_time") is not None:
            extra["compile_time"] = res["compile_time"]
        eps = res["epochs"]
        if eps:
            extra["stopped_early"] = False
        if res["error"] is not None and eps:
            step = sum(exp.train.batch_size / e["ips"] for e in eps if e["ips"]) / len(eps)  # seconds per step
            extra.update(step_time=step, reward=reward(res["error"], step, tr.params, exp.reward))
        extra.update(peak_mem=meter.peak(), peak_mem_kind=meter.kind)
    except Exception as e:  # recorded with its reason; Ray retries it if trial.retries allows
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        if meter is not None:
            extra.update(peak_mem=meter.peak(), peak_mem_kind=meter.kind)
            if is_oom(e):  # one line with the figures; the memory goes back to the trials beside it
                reason = oom_reason(e, extra["peak_mem"], meter.kind, share, meter.total(), gpus)
        release(dev)
        tune.report({"final": True, "row": json.dumps(row(rec, repeat, ctx, None, reason, **extra))})
        raise
    release(dev)
    last = _epoch_metrics(res["epochs"][-1]) if res["error"] is not None and res["epochs"] else {}
    tune.report({"final": True, "row": json.dumps(row(rec, repeat, ctx, res, **extra)), **last})
