"""The sweep driver: one writer per folder, the plan fixed on disk, Ray Tune trials, rows as they finish, resume.

The sweep folder holds `experiment.yaml` and `plan.jsonl` (what to train, fixed at the start; a larger `n` appends),
`noise.jsonl` (the noise-floor repeats, chosen once the primaries are done), `results.jsonl` (the user's table: one
fsynced row per finished trial), `results.parquet` (its atomic export), `status.json` (progress), `errors.log` (full
tracebacks of failed trials), `.lock` (held by the driver) and `ray/` (Ray's own folders, one per run, with per-epoch
checkpoints that resume uses to continue unfinished trials: an implementation detail).
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import plan as planning
from .cluster import check_address, check_local, check_resources, quiet_env, ray_start
from ..models.config import canonical
from ..errors import DseError
from .experiment import Experiment, diff, saved
from ..io import FolderLock, append_line, check_path, make_folder, os_error, refuse_links, write_atomic
from ..results import JSONL, NOISE, PLAN, ResultsLog, finalize, planned_keys, read_rows, row
from ..results import row_key as results_key

EXP, STATUS, ERRORS = "experiment.yaml", "status.json", "errors.log"


class Interrupted(Exception):
    """A sweep stopped by SIGINT/SIGTERM; finished rows are kept and --resume continues it."""

    def __init__(self, out: Path, done: int, total: int, signame: str = "SIGINT"):
        super().__init__(f"interrupted: {done}/{total} done")
        self.out, self.done, self.total, self.signame = out, done, total, signame


@dataclass
class Counts:
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0

    def text(self) -> str:
        return f"{self.failed} failed, {self.running} running"


def _write_status(out: Path, c: Counts, state: str) -> None:
    s = {"state": state, "pid": os.getpid(), "total": c.total, "done": c.done, "failed": c.failed,
         "running": c.running if state == "running" else 0, "updated": time.time()}
    try:
        write_atomic(out / STATUS, json.dumps(s), force=True)
    except DseError:
        pass  # progress is a convenience; the results table is what must survive


def _write_jsonl(path: Path, recs: list[dict]) -> None:
    write_atomic(path, "".join(canonical(r) + "\n" for r in recs), force=True)


# ---------------------------------------------------------------- the folder: new, resumed or grown

def prepare(exp: Experiment, out: Path, resume: bool, make_plan=planning.plan) -> tuple[Experiment, list[dict]]:
    """(experiment, plan) of the folder: a new sweep writes them; a resumed one checks the given experiment against
    the saved one and grows the plan when only `n` grew (the first n samples stay the same)."""
    if not resume:
        if out.exists() and not out.is_dir():
            raise DseError(f"{out}: exists and is not a folder; pick a new --out")
        if out.exists() and any(out.iterdir()):
            raise DseError(f"{out}: already exists and is not empty; use --resume to continue it or pick a new --out")
        return exp, planning.check(make_plan(exp), out / PLAN)
    if not (out / PLAN).exists():
        raise DseError(f"{out}: nothing to resume (no {PLAN}); start it without --resume")
    old = saved(out)
    recs = planning.check(read_rows(out / PLAN), out / PLAN)
    if exp is None or exp.to_dict() == old.to_dict():
        return old, recs
    keys = diff(old, exp)
    if keys and set(keys) <= {"n", "search.budget"} and _grows(old, exp) and not exp.samples and not exp.grid:
        have = {r["id"] for r in recs}
        new = make_plan(exp)  # per space, the first old.n samples of n are the old ones (same seed, band)
        if not have <= {r["id"] for r in new}:
            raise DseError(f"{out}: cannot grow the sweep: its saved samples are not the first {len(recs)} of the "
                           "new plan")
        return exp, planning.check(recs + [r for r in new if r["id"] not in have], out / PLAN)  # old plan: prefix
    verb = "differs" if len(keys) == 1 else "differ"
    raise DseError(f"{out}: holds a different experiment ({', '.join(keys)} {verb}); continue it with the saved "
                   f"{out / EXP}, or pick a new --out (only a larger n, or a larger search budget, grows a run)")


def _grows(old: Experiment, new: Experiment) -> bool:
    """True when new only asks for more: a larger n, or a larger search budget of the same kind."""
    from .experiment import parse_budget

    if new.n < old.n:
        return False
    if old.search is None or new.search is None:
        return old.search == new.search
    (ka, a), (kb, b) = parse_budget(old.search.budget), parse_budget(new.search.budget)
    return ka == kb and b >= a


def _check_data(exp: Experiment, recs: list[dict]):
    """Load the data once before the folder is made (bad data fails early); None when each net has its res."""
    from ..models.config import Config
    from ..data import entry, load_data

    if exp.data.res == "net":  # checked at the first sample's resolution (a TPE search has no plan to check)
        if recs:
            load_data(**exp.data.args(Config.from_dict(recs[0]).net.res))
        return None
    data = load_data(**exp.data.args())
    if exp.train.batch_size > data.n_train:
        raise DseError(f"train.batch_size {exp.train.batch_size} is larger than the training set "
                       f"({data.n_train} images of {exp.data.name}); lower it")
    return None if entry(exp.data.name).mapped else data  # a memory-mapped cache: each trial maps it itself


# ---------------------------------------------------------------- recording

def _callback(results: ResultsLog, counts: Counts, ctx: dict, errors: Path, update, stop: dict, verbose: int,
              prune, seed: int, live=None):
    from ray import tune

    class Recorder(tune.Callback):
        """Writes a row the moment a trial finishes, fails for good or is stopped early, then updates the progress."""

        def __init__(self):
            self.curves: dict[str, list] = {}  # per Ray trial: the val errors reported so far (for stopped trials)
            self.running: set[str] = set()

        def on_trial_start(self, iteration, trials, trial, **info):
            self.running.add(trial.trial_id)
            counts.running = len(self.running)
            update()

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if not result.get("final") and "val_error" in result:
                self.curves.setdefault(trial.trial_id, []).append(float(result["val_error"]))
            if live is not None:  # curves.jsonl and TensorBoard, one line per epoch as it arrives
                live.epoch(trial.config["point"], result)

        def _record(self, trial, failed: bool, trials=()):
            self.running.discard(trial.trial_id)
            counts.running = len(self.running)
            res = trial.last_result or {}
            point = trial.config["point"]
            r = json.loads(res["row"]) if res.get("row") else None
            text = _error_text(trial) if failed else None
            if text and "No space left on device" in text:  # the disk, not the trial: keep it unrecorded, stop
                stop["error"] = DseError(f"{results.path.parent}: cannot write (No space left on device)")
                raise OSError(28, "No space left on device")
            curve = self.curves.pop(trial.trial_id, [])
            if live is not None:
                live.close(planning.key(point["sample"]["id"], point.get("repeat", 0), point.get("arm")))
            if r is None:
                rep = point.get("repeat", 0)
                r = row(point["sample"], rep, ctx, None, _last_line(text),
                        seed=planning.trial_seed(seed, point["sample"]["id"], rep), **point.get("cols", {}))
                if not failed and curve:  # stopped by the scheduler after len(curve) epochs
                    r.update(status="stopped", reason=f"stopped early after epoch {len(curve)}", error=curve[-1],
                             best_error=min(curve), errors=curve, epochs=len(curve), stopped_early=True,
                             wall=res.get("time_total_s"))
            if failed and r.get("status") == "ok":
                r.update(status="failed", reason=_last_line(text) or "trial errored")
            try:
                new = results.append(r)
                if text:
                    append_line(errors, f"=== {r['key']} ({r['space']})\n{text}\n")
            except (OSError, DseError) as e:
                stop["error"] = os_error(results.path, e) if isinstance(e, OSError) else e
                raise
            if new:
                counts.done += 1
                if r.get("status") == "failed":
                    counts.failed += 1
                    line = f"failed: {r['key']} ({r['space']}): {r.get('reason')}"
                    print(line + (f"\n{text}" if verbose and text else ""), file=sys.stderr, flush=True)
                if prune is not None and r.get("status") == "ok":
                    prune()
            _drop_checkpoints(trial)
            update()

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


def _error_text(trial) -> str | None:
    """A failed trial's full error text (Ray's error file), if any."""
    for attr in ("error_file", "error_filename"):
        f = getattr(trial, attr, None)
        if f and Path(str(f)).is_file():
            return Path(str(f)).read_text().strip() or None
    return None


def _last_line(text: str | None) -> str | None:
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else None


def dirname(point: dict) -> str:
    """The Ray folder of a trial: the model id (id@arm in an arm), with -rK for its K-th repeat."""
    head = point["sample"]["id"] + (f"@{point['arm']}" if point.get("arm") else "")
    return head + (f"-r{point['repeat']}" if point.get("repeat") else "")


def _dirname(t) -> str:
    return dirname(t.config["point"])


def _checkpoints(out: Path) -> dict[str, str]:
    """The newest checkpoint folder per trial (its Ray folder name: id, or id-rK) left by earlier runs."""
    found: dict[str, tuple] = {}
    for st in (out / "ray").glob("run-*/*/checkpoint_*/state.pt"):
        tail = st.parents[2].name.split("-")[1]
        key = (int(tail) if tail.isdigit() else -1, st.parent.name)
        name = st.parents[1].name
        if name not in found or key > found[name][0]:
            found[name] = (key, str(st.parent))
    return {k: v[1] for k, v in found.items()}


def _pruner(out: Path, results: ResultsLog, keep: int | None):
    """Keep the weights of the best `keep` models only (None: all)."""
    from ..models.config import is_id

    if keep is None:
        return None

    def prune() -> None:
        from .trial import weights_name

        ok = sorted((r["error"], r["id"], r.get("arm") or "") for r in results.rows
                    if is_id(r.get("id")) and r.get("repeat", 0) == 0 and r.get("status") == "ok"
                    and isinstance(r.get("error"), (int, float)))
        for _, sid, arm in ok[keep:]:
            f = out / "weights" / weights_name(sid, arm or None)
            if f.exists():
                f.unlink()
    return prune


# ---------------------------------------------------------------- the driver

class Driver:
    """One run over a locked folder: the results table, the progress line, the recorder, SIGINT/SIGTERM, and the
    translation of an interrupt or a full disk into Interrupted / one DseError once the rows are safe.
    Used as a context manager around one or more fit() calls (the sweep's primaries and repeats, or a search)."""

    def __init__(self, exp: Experiment, out: Path, data, *, total: int, address=None, verbose: int = 0,
                 progress: bool = True, csv: bool = False, faults: str | None = None, what: str = "trials",
                 cols: dict | None = None, planned: set[str] | None = None):
        from ..progress import Progress
        from .trial import context

        self.exp, self.out, self.data, self.csv, self.faults = exp, out, data, csv, faults
        self.results = ResultsLog(out / JSONL)
        self.counts = Counts(total=total)
        self.count_done(planned)
        self.prior = _checkpoints(out)
        self.address, self.verbose = address, verbose
        self.bar = Progress(total, f"{exp.name} {what}", every=15.0, enabled=progress, initial=self.counts.done)
        self.stop: dict = {}
        self.cols = cols or {}  # extra columns of every row (a search's searcher and scheduler)
        prune = _pruner(out, self.results, exp.trial.keep_best) if exp.trial.keep_weights else None
        from .curves import Live

        self.live = Live(out)
        self.callback = _callback(self.results, self.counts, {**context(exp, data), **self.cols}, out / ERRORS,
                                  self.update, self.stop, verbose, prune, exp.seed, self.live)
        self.started = False

    def update(self, force: bool = False) -> None:
        _write_status(self.out, self.counts, "running")
        self.bar.update(self.counts.done, self.counts.text(), force=force)

    def count_done(self, planned: set[str] | None) -> None:
        """Count as done only the rows of planned trials (None: every row, for a search that proposes its trials as
        it runs); a row appended by hand or by another sweep is never done."""
        rows = [r for r in self.results.rows if planned is None or results_key(r) in planned]
        self.counts.done = len({results_key(r) for r in rows})
        self.counts.failed = len({results_key(r) for r in rows if r.get("status") == "failed"})

    def set_total(self, total: int, planned: set[str] | None = None) -> None:
        self.counts.total = total
        if planned is not None:
            self.count_done(planned)
        self.bar.set_total(total)

    def todo(self, points: list[dict]) -> list[dict]:
        """The points still to train: not in the table; with the checkpoint an earlier run left for them."""
        return [{**p, "resume_from": self.prior.get(dirname(p))} for p in points
                if planning.key(p["sample"]["id"], p.get("repeat", 0), p.get("arm")) not in self.results]

    def fit(self, points: list[dict] | None = None, *, search_alg=None, scheduler=None, num_samples: int = 1,
            time_budget_s: float | None = None) -> None:
        """One Ray Tune run: a grid over `points`, or `num_samples` trials suggested by `search_alg`."""
        from ray import tune

        from .resources import request
        from .trial import run as trainable_fn

        if not self.started:
            ray_start(self.address, self.verbose)
            self._catch()  # ray.init installs its own SIGTERM handler (a stack dump, then exit): ours again
            check_resources(self.exp.trial.cpus, self.exp.trial.gpus, local=self.address is None)
            self.started = True
            self.update(force=True)
        out, exp = self.out, self.exp
        runs = sorted(int(p.name.split("-")[1]) for p in (out / "ray").glob("run-*")
                      if p.name.split("-")[1].isdigit())
        space = {"exp": exp, "weights_dir": str(out / "weights"), "faults": self.faults, "cols": self.cols}
        if points is not None:
            space["point"] = tune.grid_search(points)
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable_fn, data=self.data),
                                request(exp.trial.cpus, exp.trial.gpus)),
            param_space=space,
            tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=_dirname,
                                        trial_name_creator=_dirname, search_alg=search_alg, scheduler=scheduler,
                                        num_samples=num_samples, time_budget_s=time_budget_s),
            run_config=tune.RunConfig(
                name=f"run-{(runs[-1] + 1) if runs else 0}", storage_path=str(out / "ray"), verbose=0,
                callbacks=[self.callback], failure_config=tune.FailureConfig(max_failures=exp.trial.retries),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )
        try:
            tuner.fit()
        finally:
            self.live.close_all()  # a trial Tune ended without a completion event leaves no open event file

    def _on_signal(self, signum, frame):
        if "signal" in self.stop:
            return  # a second Ctrl-C while the first one unwinds: the rows are being made safe already
        self.stop["signal"] = signal.Signals(signum).name
        raise KeyboardInterrupt

    def _catch(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def __enter__(self):
        self.previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._catch()
        return self

    def __exit__(self, kind, exc, tb):
        if kind is KeyboardInterrupt:
            self.stop.setdefault("signal", "SIGINT")
        elif kind is not None and "error" not in self.stop:
            self._restore()
            return False  # a real bug: let it show
        try:
            self._close()
        finally:
            self._restore()  # after the rows are safe: a second signal meanwhile is swallowed by _on_signal
        return False

    def _restore(self) -> None:
        for sig, h in self.previous.items():
            signal.signal(sig, h)

    def _close(self) -> None:
        c = self.counts
        c.running = 0
        state = ("interrupted" if "signal" in self.stop else "failed" if "error" in self.stop else
                 "finished" if c.done >= c.total else "incomplete")
        _write_status(self.out, c, state)
        self.bar.update(c.done, c.text())
        self.bar.close()
        try:
            finalize(self.out, self.csv)
        except DseError as e:
            self.stop.setdefault("error", e)
        except Exception as e:  # the export only: results.jsonl stays the truth
            self.stop.setdefault("error", DseError(f"{self.out}: cannot write results.parquet ({type(e).__name__}: "
                                                   f"{str(e).splitlines()[0][:200] if str(e) else ''})"))
        if "error" in self.stop:
            raise DseError(f"{self.stop['error']}; the {c.done} rows written before are kept in "
                           f"{self.out / JSONL}") from None
        if "signal" in self.stop:
            raise Interrupted(self.out, c.done, c.total, self.stop["signal"]) from None


def folder(exp: Experiment | None, out: str | Path, resume: bool, make_plan, data=None):
    """Open a sweep folder for writing: (experiment, plan, data, lock). A new folder is made only after the
    experiment, plan and data have been checked (bad input leaves nothing behind); a resumed one is locked before
    it is read. The caller releases the lock."""
    out = check_path(out)
    lock = FolderLock(out) if resume and out.exists() else None
    try:
        if lock is not None:
            refuse_links(out)  # before anything is read or written: dse never writes through a link
        exp, recs = prepare(exp, out, resume, make_plan)
        if data is None:
            data = _check_data(exp, recs)
        if lock is None:
            make_folder(out)  # on failure, no parent it made is left behind
            lock = FolderLock(out)
            if any(p.name != FolderLock.NAME for p in out.iterdir()):
                raise DseError(f"{out}: another sweep started here meanwhile; pick a new --out")
        if not resume or not (out / EXP).exists() or saved(out).to_dict() != exp.to_dict():
            _write_jsonl(out / PLAN, recs)  # new, or grown: the old plan is its prefix
            write_atomic(out / EXP, yaml.safe_dump(exp.to_dict(), sort_keys=False), force=True)
        return exp, recs, data, lock
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def sweep(exp: Experiment | None, out: str | Path, *, address: str | None = None, resume: bool = False,
          retries: int | None = None, verbose: int = 0, progress: bool = True, data=None, csv: bool = False,
          _faults: str | None = None) -> Path:
    """Train every sample of an experiment (then its noise-floor repeats) as Ray Tune trials; returns the folder.

    A new sweep refuses an existing non-empty folder. `resume=True` continues one: trials already in the table are
    never trained or written again, unfinished ones continue from their last epoch checkpoint, and a larger `n`
    grows the sweep. Ctrl-C (or SIGTERM) raises Interrupted once the rows written so far are safe.
    `_faults` is a test hook: a folder of files <key> that each hold how many attempts of that trial raise.
    """
    quiet_env()
    out = check_path(out).resolve()
    address = check_address(address)  # before any folder is made
    if retries is not None and not (isinstance(retries, int) and 0 <= retries <= 100):
        raise DseError(f"--retries must be an integer in 0..100, got {retries}")
    if exp is not None:
        check_local(exp.trial.cpus, address)
    exp, recs, data, lock = folder(exp, out, resume, planning.plan, data)
    try:
        if retries is not None:  # for this run only: the saved experiment keeps its own
            exp = exp.replace(trial=dataclasses.replace(exp.trial, retries=retries))
        first = planning.points(exp, recs)
        n_noise = min(exp.noise.models, len(recs)) * exp.noise.repeats
        planned = {planning.key(p["sample"]["id"], p["repeat"], p.get("arm")) for p in first}
        planned |= planned_keys(out) or set()  # and the noise repeats, once chosen
        with Driver(exp, out, data, total=len(first) + n_noise, address=address, verbose=verbose,
                    progress=progress, csv=csv, faults=_faults, planned=planned) as d:
            todo = d.todo(first)
            if todo:
                d.fit(todo)
            if n_noise:
                points = _noise_points(exp, out, recs, d.results)
                planned |= {planning.key(p["sample"]["id"], p["repeat"], p.get("arm")) for p in points}
                d.set_total(len(first) + len(points), planned)
                todo = d.todo(points)
                if todo:
                    d.fit(todo)
        return out
    finally:
        lock.release()


def _noise_points(exp: Experiment, out: Path, recs: list[dict], results: ResultsLog) -> list[dict]:
    """The noise repeats: read from noise.jsonl, or chosen now from the finished primaries and written once."""
    f = out / NOISE
    by_id = {r["id"]: r for r in recs}
    if f.exists():
        return [{"sample": by_id[p["id"]], "repeat": p["repeat"],
                 **({"arm": p["arm"], "cols": {"arm": p["arm"]}} if p.get("arm") else {})}
                for p in read_rows(f) if p["id"] in by_id]
    points = planning.noise_points(exp, recs, results.rows)
    _write_jsonl(f, [{"id": p["sample"]["id"], "repeat": p["repeat"], **({"arm": p["arm"]} if p.get("arm") else {})}
                     for p in points])
    return points
