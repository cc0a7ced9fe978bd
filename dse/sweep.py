"""Ray Tune orchestration: one trial trains one sample; the results table grows as trials finish; resumable.

The sweep folder holds `experiment.yaml` and `plan.jsonl` (what to train, fixed at the start), `results.jsonl`
(the user's table: one fsynced row per finished sample), `results.parquet` (its atomic export at the end),
`status.json` (progress of a running sweep) and `ray/` (Ray's own folders, one per run, with per-epoch
checkpoints: an implementation detail that resume uses to continue unfinished trials).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .config import Config, canonical
from .errors import DseError
from .experiment import Experiment
from .io import write_atomic
from .results import JSONL, ResultsLog, finalize, read_rows

log = logging.getLogger(__name__)
PLAN, EXP, STATUS = "plan.jsonl", "experiment.yaml", "status.json"
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0",
             "RAY_DEDUP_LOGS": "1", "TUNE_RESULT_BUFFER_LENGTH": "1", "RAY_TRAIN_V2_ENABLED": "0",
             "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0", "PYTHONWARNINGS": "ignore"}


# ---------------------------------------------------------------- the plan: which samples to train

def plan(exp: Experiment) -> list[dict]:
    """The sample records to train, in a deterministic order (sampled per space, or read from a samples file)."""
    from .complexity import complexity
    from .space import Sample, sample

    if exp.grid:
        return _distinct(grid_plan(exp.grid))
    if exp.samples:
        rows = read_rows(exp.samples)
        out, seen = [], set()
        for i, r in enumerate(rows):
            try:
                cfg = Config.from_dict(r)
            except (KeyError, TypeError, ValueError) as e:
                raise DseError(f"{exp.samples}:{i + 1}: not a sample record ({e})") from None
            if cfg.id not in seen:
                seen.add(cfg.id)
                out.append(Sample(cfg, complexity(cfg.net)).to_dict())
        if not out:
            raise DseError(f"{exp.samples}: no samples")
        return out
    recs = []
    for space in exp.spaces:
        recs += [s.to_dict() for s in sample(space, exp.n, seed=exp.seed, workers=1, **exp.bands)]
    return recs


def _distinct(recs: list[dict]) -> list[dict]:
    """Keep the first record of each id (different parameters can build the same network)."""
    seen: set[str] = set()
    out = []
    for r in recs:
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    return out


def grid_plan(g: dict) -> list[dict]:
    """EfficientNet's step 1: one scaled B0 per (alpha, beta, gamma) of the grid, at phi (default 1)."""
    from .scaling import grid as abg

    recs = []
    for a, b, c in abg(g.get("step", 0.05), g.get("tol", 0.05), g.get("max", 2.0)):
        p = {"alpha": a, "beta": b, "gamma": c, "phi": g.get("phi", 1), "width": g.get("width", 1.0),
             "depth": g.get("depth", 1.0), "res": g.get("base_res", 224), "dropout": 0.0}
        from .api import describe
        recs.append(describe("efficientnet_compound", **p).to_dict())
    return recs


def trial_seed(seed: int, sid: str) -> int:
    """A per-sample training seed, stable across runs and resumes."""
    return int(hashlib.sha256(f"{seed}:{sid}".encode()).hexdigest()[:8], 16)


# ---------------------------------------------------------------- the trial (runs in a Ray worker)

def _state_from(path: str | None):
    import torch

    if not path:
        return None
    f = Path(path) / "state.pt"
    return torch.load(f, map_location="cpu", weights_only=True) if f.exists() else None


def trial(config: dict, data=None) -> None:
    """One Ray Tune trial: train one sample, reporting every epoch with a checkpoint, then a final row."""
    import torch
    from ray import tune

    from .fixres import errors_at, save_weights
    from .models import build
    from .progressive import Progressive
    from .train import Recipe, train

    rec, exp = config["point"]["sample"], config["exp"]
    cfg = Config.from_dict(rec)
    if data is None:  # data.res == "net": each sample trains at its own resolution
        data = _data_at({**exp["data"], "res": cfg.net.res})
    recipe = Recipe.from_dict(exp["train"])
    threads = max(1, int(exp["trial"].get("threads") or exp["trial"].get("cpus", 1)))
    ck = tune.get_checkpoint()
    state = None
    if ck is not None:
        with ck.as_directory() as d:
            state = _state_from(d)
    elif config["point"].get("resume_from"):
        state = _state_from(config["point"]["resume_from"])
    resumed_at = int(state["epoch"]) if state else 0
    seed = trial_seed(exp["seed"], cfg.id)

    def on_epoch(m: dict, st: dict) -> None:
        with tempfile.TemporaryDirectory() as d:
            torch.save(st, Path(d) / "state.pt")
            tune.report({"epoch": m["epoch"], "val_error": m["val_error"], "final": False},
                        checkpoint=tune.Checkpoint.from_directory(d))

    prog = Progressive.from_dict(exp["progressive"]) if exp.get("progressive") else None
    kw = {"res": data.res, "classes": data.classes}
    if prog is not None:
        kw["dropout"] = max(cfg.net.dropout, prog.dropout[1])  # a dropout layer for the schedule to drive
    final = {}

    def keep(m: dict, st: dict) -> None:
        final["model"] = st["model"]
        on_epoch(m, st)

    try:
        _injected_fault(cfg.id, exp["trial"].get("faults"))
        res = train(lambda: build(cfg.net, **kw), data, recipe, seed=seed, threads=threads,
                    device=exp["trial"].get("device", "cpu"), on_epoch=keep, resume=state, progressive=prog)
        sizes = exp["trial"].get("test_sizes")
        if res["status"] == "ok" and (sizes or exp["trial"].get("keep_weights")):
            model = build(cfg.net, **kw)
            model.load_state_dict(final.get("model") or state["model"])
            if sizes:
                res["test_errors"] = {str(k): v for k, v in errors_at(model, data, sizes).items()}
            if exp["trial"].get("keep_weights"):
                wdir = Path(exp["trial"]["weights_dir"])
                wdir.mkdir(parents=True, exist_ok=True)
                save_weights(wdir / f"{cfg.id}.pt", rec, model.state_dict())
    except Exception as e:  # recorded with its reason; Ray retries it if --retries allows
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        tune.report({"final": True, "row": json.dumps(_row(rec, exp, cfg, None, reason, resumed_at, data))})
        raise
    tune.report({"final": True, "row": json.dumps(_row(rec, exp, cfg, res, None, resumed_at, data))})


def reward(error: float, step_time: float, params: float, w: float = -0.07, v: float = -0.05,
           s_ref: float = 1.0, p_ref: float = 1e6) -> float:
    """EfficientNetV2's training-aware reward A * S^w * P^v: accuracy, step time (s, over s_ref), params (over p_ref)."""
    return (1 - error / 100) * (step_time / s_ref) ** w * (params / p_ref) ** v


@lru_cache(maxsize=4)
def _load_cached(name: str, path, res: int, val_frac: float):
    from .data import load_data

    return load_data(name=name, path=path, res=res, val_frac=val_frac)


def _data_at(d: dict):
    """The experiment's data at a given resolution, loaded once per worker process."""
    return _load_cached(d.get("name", "digits"), d.get("path"), int(d["res"]), float(d.get("val_frac", 0.2)))


def _injected_fault(sid: str, d: str | None) -> None:
    """Fault injection for reliability tests (trial.faults): the file <d>/<id> holds how many attempts raise."""
    f = Path(d) / sid if d else None
    if f is not None and f.exists():
        left = int(f.read_text() or 0)
        if left > 0:
            f.write_text(str(left - 1))
            raise RuntimeError(f"injected fault ({left - 1} more)")


def _node() -> str | None:
    """The id of the Ray node running this trial (None outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _row(rec: dict, exp: dict, cfg: Config, res: dict | None, error: str | None, resumed_at: int, data) -> dict:
    """A results-table row: the sample, its complexity, the outcome and the per-epoch curves."""
    from .complexity import complexity
    from .space import flat_row

    row = flat_row(rec)
    row.update(stages=rec["stages"], config=rec["config"])
    tr = complexity(cfg.net.replace(res=data.res, classes=data.classes))
    row.update(train_res=data.res, train_flops=tr.flops, train_params=tr.params, resumed_at=resumed_at, node=_node())
    if res is None:
        row.update(status="failed", reason=error, error=None, best_error=None)
        return row
    eps = res["epochs"]
    if res["error"] is not None and eps:
        bs = exp["train"].get("batch_size", 128)
        step = sum(bs / e["ips"] for e in eps if e["ips"]) / len(eps)  # seconds per training step
        row.update(step_time=step, reward=reward(res["error"], step, tr.params, **exp.get("reward", {})))
    row.update(status=res["status"], reason=res["reason"], error=res["error"], best_error=res["best_error"],
               errors=[e["val_error"] for e in eps], train_errors=[e["train_error"] for e in eps],
               losses=[e["train_loss"] for e in eps], epoch_times=[e["time"] for e in eps],
               ips=(sum(e["ips"] for e in eps) / len(eps)) if eps else None, epochs=len(eps), wall=res["wall"],
               seed=res["seed"], threads=res["threads"], torch=res["torch"], dse=res["dse"])
    if res.get("test_errors"):
        te = res["test_errors"]
        best = min(te, key=te.get)
        row.update(test_errors=te, best_test_size=int(best), best_test_error=te[best],
                   fixres_gain=(res["error"] - te[best]) if res["error"] is not None else None)
    if eps and "res" in eps[0]:
        row["schedule"] = [{k: e[k] for k in ("stage", "res", "dropout", "randaug", "mixup")} for e in eps]
    return row


# ---------------------------------------------------------------- the driver

def _current_cluster() -> str | None:
    """The address `ray start` last recorded on this machine (Ray's ray_current_cluster file), if any."""
    tmp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    f = Path(tmp) / "ray" / "ray_current_cluster"
    return (f.read_text().strip() or None) if f.is_file() else None


def check_address(address: str | None, timeout: float = 3.0) -> str | None:
    """The Ray cluster address to join (None: start a local Ray); a DseError unless something listens there.

    "auto" means RAY_ADDRESS, else the cluster last started with `ray start` on this machine. Checked with a plain
    TCP connect, because ray.init to a dead address waits long and prints tracebacks."""
    if not address and os.environ.get("RAY_ADDRESS"):  # Ray's own convention: RAY_ADDRESS means join that cluster
        address = os.environ["RAY_ADDRESS"]
    if not address:
        return None
    addr = address if address != "auto" else (os.environ.get("RAY_ADDRESS") or _current_cluster())
    if not addr:
        raise DseError("--address auto: no running Ray cluster found on this machine (start one with "
                       "`ray start --head`, set RAY_ADDRESS, or pass --address HOST:PORT)")
    host, sep, port = addr.split("://")[-1].rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DseError(f"--address {address}: expected HOST:PORT or auto, got {addr!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        raise DseError(f"--address {address}: no Ray cluster reachable at {host}:{port} ({why})") from None
    return addr


def ray_start(address: str | None, verbose: int = 0, cpus: int | None = None) -> None:
    """Start (or join) Ray quietly: no dashboard, no usage stats, no log flood; a DseError if the address is dead."""
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    import ray

    if ray.is_initialized():
        return
    address = check_address(address)
    kw = dict(include_dashboard=False, log_to_driver=verbose > 0, configure_logging=True,
              logging_level=logging.INFO if verbose > 1 else logging.ERROR)
    if address:  # a cluster's workers do not inherit this process's environment
        ray.init(address=address, runtime_env={"env_vars": {k: os.environ[k] for k in QUIET_ENV}}, **kw)
    else:
        ray.init(num_cpus=cpus or os.cpu_count(), **kw)
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.INFO if verbose > 1 else logging.ERROR)


@dataclass
class Counts:
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    started: float = 0.0
    base: int = 0  # rows already in the table when this run started

    def line(self, name: str) -> str:
        el = time.monotonic() - self.started
        fin = self.done - self.base
        left = self.total - self.done
        eta = f"ETA {_dur(el / fin * left)}" if fin > 0 and left else ("ETA ?" if left else "finished")
        return (f"{name}: {self.done}/{self.total} done ({self.failed} failed), {self.running} running, "
                f"{_dur(el)} elapsed, {eta}")


def _dur(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


def _callback(out: Path, results: ResultsLog, counts: Counts, name: str, show):
    from ray import tune

    class Recorder(tune.Callback):
        """Writes a row the moment a trial finishes (or fails for good) and keeps the progress line fresh."""

        def on_trial_start(self, iteration, trials, trial, **info):
            counts.running = sum(t.status == "RUNNING" for t in trials)
            show()

        def _record(self, trial, failed: bool, trials=()):
            counts.running = max(0, sum(t.status == "RUNNING" for t in trials if t is not trial))
            res = trial.last_result or {}
            row = json.loads(res["row"]) if res.get("row") else None
            if row is None:
                rec = trial.config["point"]["sample"]
                from .space import flat_row
                row = {**flat_row(rec), "stages": rec["stages"], "config": rec["config"], "status": "failed",
                       "reason": _error_text(trial) or "trial failed before reporting", "error": None}
            if failed and row.get("status") == "ok":
                row.update(status="failed", reason=_error_text(trial) or "trial errored")
            if results.append(row):
                counts.done += 1
                counts.failed += row.get("status") != "ok"
            _drop_checkpoints(trial)
            show()

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._record(trial, False, trials)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._record(trial, True, trials)

    return Recorder()


def _drop_checkpoints(trial) -> None:
    """A finished trial's epoch checkpoints are not needed once its row is durable (bounded disk use)."""
    import shutil

    path = getattr(trial, "path", None) or getattr(trial, "local_path", None)
    if path and Path(str(path)).is_dir():
        for ck in Path(str(path)).glob("checkpoint_*"):
            shutil.rmtree(ck, ignore_errors=True)


def _trial_name(t) -> str:
    return t.config["point"]["sample"]["id"]


def _error_text(trial) -> str | None:
    """The last line of a failed trial's error (its exception and message)."""
    for attr in ("error_file", "error_filename"):
        f = getattr(trial, attr, None)
        if f and Path(str(f)).is_file():
            lines = [ln for ln in Path(str(f)).read_text().splitlines() if ln.strip()]
            return lines[-1][:300] if lines else None
    return None


def _checkpoints(out: Path) -> dict[str, str]:
    """The newest checkpoint folder per sample id left by earlier runs of this sweep."""
    found: dict[str, tuple] = {}
    for st in (out / "ray").glob("run-*/*/checkpoint_*/state.pt"):
        run = int(st.parents[2].name.split("-")[1]) if st.parents[2].name.split("-")[1].isdigit() else -1
        key = (run, st.parent.name)
        sid = st.parents[1].name
        if sid not in found or key > found[sid][0]:
            found[sid] = (key, str(st.parent))
    return {k: v[1] for k, v in found.items()}


def _data_args(exp: Experiment) -> dict:
    """The experiment's data section as load_data's keyword arguments."""
    return {k: v for k, v in exp.data.items() if k in ("name", "path", "res", "val_frac")}


def _write_status(out: Path, counts: Counts, state: str) -> None:
    s = {"state": state, "pid": os.getpid(), "total": counts.total, "done": counts.done, "failed": counts.failed,
         "running": counts.running, "updated": time.time()}
    try:
        write_atomic(out / STATUS, json.dumps(s), force=True)
    except OSError:
        pass


def sweep(exp: Experiment, out: str | Path, *, address: str | None = None, resume: bool = False,
          retries: int | None = None, verbose: int = 0, progress: bool = True, data=None, csv: bool = False) -> Path:
    """Train every sample of an experiment as a Ray Tune trial; returns the sweep folder.

    A new sweep refuses an existing non-empty folder; `resume=True` continues one: samples already in the table
    are never trained or written again, unfinished ones continue from their last epoch checkpoint.
    """
    from .data import load_data
    from .progress import interactive

    out = Path(out).resolve()
    address = check_address(address)  # before any folder is made
    if resume:
        if not (out / PLAN).exists():
            raise DseError(f"{out}: nothing to resume (no {PLAN}); start it without --resume")
        saved = yaml.safe_load((out / EXP).read_text())
        from .experiment import parse
        exp = parse(saved, str(out / EXP))
        recs = read_rows(out / PLAN)
    else:
        if out.exists() and not out.is_dir():
            raise DseError(f"{out}: exists and is not a folder; pick a new --out")
        if out.exists() and any(out.iterdir()):
            raise DseError(f"{out}: already exists and is not empty; use --resume to continue it or pick a new --out")
        recs = plan(exp)
        if data is None:  # bad data fails before the folder is made
            if exp.data.get("res") == "net":  # each sample trains at its own resolution: check it at the first's
                load_data(**{**_data_args(exp), "res": Config.from_dict(recs[0]).net.res})
            else:
                data = load_data(**_data_args(exp))
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / EXP, yaml.safe_dump(exp.to_dict(), sort_keys=False), force=True)
        write_atomic(out / PLAN, "".join(canonical(r) + "\n" for r in recs), force=True)
    results = ResultsLog(out / JSONL)
    todo = [r for r in recs if r["id"] not in results]
    counts = Counts(total=len(recs), done=len(recs) - len(todo), base=len(recs) - len(todo),
                    started=time.monotonic())
    counts.failed = sum(1 for r in read_rows(out / JSONL) if r.get("status") != "ok") if (out / JSONL).exists() else 0
    if not todo:
        finalize(out, csv)
        _write_status(out, counts, "finished")
        return out
    if data is None and exp.data.get("res") != "net":
        data = load_data(**_data_args(exp))
    tty = progress and interactive()
    last = [0.0, ""]  # when and what was shown last

    def show(force: bool = False) -> None:
        now = time.monotonic()
        if force or now - last[0] >= (0.5 if tty else 15.0):
            last[0] = now
            _write_status(out, counts, "running")
            if progress:
                line = last[1] = counts.line(exp.name)
                print(("\r\033[K" + line) if tty else line, end="" if tty else "\n", flush=True,
                      file=sys.stderr)

    ray_start(address, verbose)
    from ray import tune

    prev = _checkpoints(out) if resume else {}
    grid = [{"sample": r, "resume_from": prev.get(r["id"])} for r in todo]
    exp_d = exp.to_dict()
    exp_d["trial"]["weights_dir"] = str(out / "weights")
    runs = sorted(int(p.name.split("-")[1]) for p in (out / "ray").glob("run-*") if p.name.split("-")[1].isdigit())
    name = f"run-{(runs[-1] + 1) if runs else 0}"
    cpus = exp.cpus
    trainable = tune.with_resources(tune.with_parameters(trial, data=data),
                                    {"cpu": cpus, "gpu": exp.trial.get("gpus", 0)})
    tuner = tune.Tuner(
        trainable,
        param_space={"exp": exp_d, "point": tune.grid_search(grid)},
        tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=_trial_name, trial_name_creator=_trial_name),
        run_config=tune.RunConfig(
            name=name, storage_path=str(out / "ray"), verbose=0,
            callbacks=[_callback(out, results, counts, exp.name, show)],
            failure_config=tune.FailureConfig(max_failures=exp.trial.get("retries", 0) if retries is None else retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    show(force=True)
    interrupted = False
    try:
        tuner.fit()
    except KeyboardInterrupt:
        interrupted = True
    missing = [r["id"] for r in recs if r["id"] not in results]
    state = "interrupted" if interrupted else ("finished" if not missing else "incomplete")
    _write_status(out, counts, state)
    finalize(out, csv)
    if progress:
        line = counts.line(exp.name)
        if tty:  # replace the live line by the final one
            print("\r\033[K" + line, file=sys.stderr)
        elif line != last[1]:
            print(line, file=sys.stderr)
    if interrupted:
        raise KeyboardInterrupt
    return out
