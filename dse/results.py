"""The results table: an append-only, fsynced JSON Lines file per sweep, finalised atomically to Parquet."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .errors import DseError
from .io import append_line, open_nofollow, write_atomic

log = logging.getLogger(__name__)
JSONL, PARQUET = "results.jsonl", "results.parquet"
PLAN, NOISE = "plan.jsonl", "noise.jsonl"  # a sweep folder's planned trials: models, then noise-floor repeats
PERCENT = ("error", "best_error", "best_test_error")  # metrics that are percentages (the per-epoch `errors` too)


METRICS = ("flops", "params", "acts")


def trial_key(sid: str, repeat: int = 0, arm: str | None = None) -> str:
    """The unique key of a trial: the model id for its primary training, id:k for its k-th extra seed; in an arm,
    id@arm and id@arm:k."""
    head = f"{sid}@{arm}" if arm else sid
    return head if repeat == 0 else f"{head}:{repeat}"


def row_key(r: dict) -> str:
    """A row's trial key (tables without `key`: from the model id and the repeat, as dedupe fills it in)."""
    return r.get("key") or trial_key(r["id"], r.get("repeat") or 0)


class ResultsLog:
    """Append one row per finished trial; a row for a key already present is never written again."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _heal_tail(self.path)
        self.rows = read_rows(self.path) if self.path.exists() else []
        self.keys = {row_key(r) for r in self.rows}

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def append(self, row: dict) -> bool:
        """Durably append a row (flush + fsync); False if its key was already recorded."""
        k = row_key(row)
        if k in self.keys:
            return False
        append_line(self.path, json.dumps(row, sort_keys=True, allow_nan=False, default=_plain) + "\n")
        self.keys.add(k)
        self.rows.append(row)
        return True


# ---------------------------------------------------------------- the row schema (the one place it is written)

def flat_row(rec: dict) -> dict:
    """A sample record as flat columns: id, space, the sampled parameters (per-stage ones as p1..pk), the number
    of stages, the depth, the per-block widths `ws`, and flops/params/acts."""
    row = {"id": rec["id"], "space": rec["space"]}
    for k, v in rec.get("config", {}).items():
        if isinstance(v, list):
            row.update({f"{k}{i + 1}": x for i, x in enumerate(v)})
        else:
            row[k] = v
    st = rec.get("stages", [])
    row["stages"] = len(st)
    row["depth"] = sum(s["d"] for s in st)
    row["ws"] = [s["w"] for s in st for _ in range(s["d"])]
    for m in METRICS:
        if m in rec:
            row[m] = rec[m]
    return row


def row(rec: dict, repeat: int, ctx: dict, res: dict | None = None, reason: str | None = None, **extra) -> dict:
    """A results row: the sample's columns, which trial it is (key, repeat), the run's context (exp, recipe, data,
    band, n_planned), any `extra` columns, then the outcome of dse.train.train (`res`) or the failure `reason`."""
    r = flat_row(rec)
    r.update(stages=rec["stages"], config=rec["config"], net=rec.get("net"),
             key=trial_key(rec["id"], repeat, extra.get("arm")), repeat=repeat, **ctx, **extra)
    if res is None:
        r.update(status="failed", reason=reason or "trial failed before reporting", error=None, best_error=None)
        return r
    eps = res["epochs"]
    r.update(status=res["status"], reason=res["reason"], error=res["error"], best_error=res["best_error"],
             errors=[e["val_error"] for e in eps], train_errors=[e["train_error"] for e in eps],
             losses=[e["train_loss"] for e in eps], epoch_times=[e["time"] for e in eps],
             train_times=[e.get("train_time") for e in eps],
             ips=(sum(e["ips"] for e in eps) / len(eps)) if eps else None, epochs=len(eps), wall=res["wall"],
             seed=res["seed"], threads=res["threads"], torch=res["torch"], dse=res["dse"])
    if res.get("test_errors"):
        te = res["test_errors"]
        best = min(te, key=te.get)
        r.update(test_errors=te, best_test_size=int(best), best_test_error=te[best],
                 fixres_gain=(res["error"] - te[best]) if res["error"] is not None else None)
    if res.get("tuned_errors"):
        r["tuned_errors"] = res["tuned_errors"]
    if eps and "res" in eps[0]:
        r["schedule"] = [{k: e[k] for k in ("stage", "res", "dropout", "randaug", "mixup")} for e in eps]
    return r


def _plain(x):
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _heal_tail(path: Path) -> None:
    """A crash mid-write can leave a last line without its newline: cut it so appends stay well-formed."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping an incomplete last line (%d bytes)", path, len(data) - keep)
        fd = open_nofollow(path, os.O_RDWR)
        try:
            os.ftruncate(fd, keep)
            os.fsync(fd)
        finally:
            os.close(fd)


def read_rows(path: str | Path, need: str | None = "id") -> list[dict]:
    """Rows of a JSON Lines file (each a mapping with the key `need`); an incomplete last line is ignored, any other
    bad line is an error."""
    path = Path(path)
    try:
        data = path.read_text()
    except OSError as e:
        raise DseError(f"{path}: cannot read ({e.strerror})") from None
    lines = data.split("\n")
    complete = data.endswith("\n") or data == ""
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1 and not complete:
                continue  # a write cut short by a crash
            raise DseError(f"{path}:{i + 1}: corrupt line (not JSON)") from None
        if not isinstance(row, dict) or (need is not None and need not in row):
            raise DseError(f"{path}:{i + 1}: corrupt line (a row needs an '{need}')")
        rows.append(row)
    return rows


def finalize(out: str | Path, csv: bool = False) -> Path | None:
    """Write results.parquet (and results.csv) atomically from the JSON Lines log (None while it has no row)."""
    out = Path(out)
    rows = read_rows(out / JSONL) if (out / JSONL).exists() else []
    if not rows:
        return None
    df = rows_frame(rows)
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    nested = [c for c in df.columns if df[c].map(_has_dict).any()]  # mappings differ by family: JSON text
    table = pa.Table.from_pandas(_as_json(df, nested), preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), JSON_META: json.dumps(nested).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    write_atomic(out / PARQUET, buf.getvalue(), force=True)
    if csv:
        lists = [c for c in df.columns if df[c].map(lambda v: isinstance(v, (list, dict))).any()]
        write_atomic(out / "results.csv", _as_json(df, lists).to_csv(index=False), force=True)
    return out / PARQUET


JSON_META = b"dse.json_columns"


def _has_dict(v) -> bool:
    return isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict) for x in v))


def _as_json(df, cols):
    """df with the given columns' list and dict cells as JSON text."""
    out = df.copy()
    for c in cols:
        out[c] = out[c].map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v)
    return out


def rows_frame(rows: list[dict]):
    """A DataFrame with one row per sample, columns in a stable order."""
    import pandas as pd

    df = pd.DataFrame(rows)
    first = [c for c in ("id", "space", "status", "reason", "error", "best_error", "flops", "params", "acts")
             if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def _decode_cells(df, path: Path, cols=None):
    """The list and dict cells that finalize wrote as JSON text (in `cols`, or any text cell starting with [ or { in
    a CSV) decoded, so Parquet and CSV load like JSON Lines."""
    import pandas as pd

    for c in df.columns if cols is None else cols:
        if not (df[c].dtype == object or pd.api.types.is_string_dtype(df[c])):
            continue
        txt = df[c].map(lambda v: isinstance(v, str) and v[:1] in "[{")
        if not txt.any():
            continue
        try:
            df[c] = [json.loads(v) if t else v for v, t in zip(df[c], txt)]
        except json.JSONDecodeError:
            raise DseError(f"{path}: corrupt cell in column {c!r} (not JSON)") from None
    return df


def planned_trials(recs: list[dict], arms=(), seeds: int = 1) -> list[tuple[dict, int, str | None]]:
    """(record, repeat, arm) of every trial a plan holds: each record `seeds` times (repeat 0..seeds-1); with arms
    ((name, fixed) pairs), a fixed arm's own record (the one marked with its `arm`) and, for every other arm, every
    sampled record (those marked with no arm)."""
    if not arms:
        return [(r, k, None) for r in recs for k in range(seeds)]
    sampled = [r for r in recs if not r.get("arm")]
    return [(r, k, name) for name, fixed in arms
            for r in ([x for x in recs if x.get("arm") == name] if fixed else sampled) for k in range(seeds)]


def planned_keys(folder: str | Path) -> set[str] | None:
    """The trial keys a sweep folder plans: its plan.jsonl's models (each `seeds` times, in each arm, as its
    experiment.yaml says) and its noise.jsonl's repeats; None where nothing is planned up front (no plan.jsonl, or an
    empty one: a TPE search proposes its trials as it runs)."""
    from .io import load_yaml

    folder = Path(folder)
    if not (folder / PLAN).is_file():
        return None
    exp = load_yaml(folder / "experiment.yaml", "experiment file") if (folder / "experiment.yaml").is_file() else {}
    exp = exp if isinstance(exp, dict) else {}
    arms = [(a["name"], a.get("space") is not None) for a in exp.get("arms") or [] if isinstance(a, dict)]
    seeds = exp.get("seeds", 1) if isinstance(exp.get("seeds", 1), int) else 1
    keys = {trial_key(str(r["id"]), k, arm) for r, k, arm in planned_trials(read_rows(folder / PLAN), arms, seeds)}
    if keys and (folder / NOISE).is_file():
        keys |= {trial_key(str(r["id"]), r.get("repeat", 0), r.get("arm")) for r in read_rows(folder / NOISE)}
    return keys or None


def load_results(path: str | Path):
    """The results table of a sweep folder (or a .parquet / .jsonl / .csv file) as a pandas DataFrame: one row per
    trial; rows of trials the folder does not plan, and rows whose errors are not percentages, set aside with a
    warning."""
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        if (p / JSONL).exists():
            p = p / JSONL
        elif (p / PARQUET).exists():
            p = p / PARQUET
        else:
            raise DseError(f"{p}: no results table here (expected {JSONL} or {PARQUET})")
    if not p.exists():
        raise DseError(f"{p}: no such results file or sweep folder")
    try:
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq

            t = pq.read_table(p)
            cols = json.loads((t.schema.metadata or {}).get(JSON_META, b"[]"))
            df = _decode_cells(t.to_pandas(), p, cols)
        elif p.suffix == ".csv":
            df = _decode_cells(pd.read_csv(p), p)
        else:
            df = rows_frame(read_rows(p))
    except DseError:
        raise
    except Exception as e:  # pyarrow / pandas parse errors: one line, no traceback
        raise DseError(f"{p}: corrupt results file ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if len(df) == 0:
        raise DseError(f"{p}: the results table is empty")
    if "id" not in df.columns:
        raise DseError(f"{p}: not a results table (no 'id' column)")
    df = dedupe(df, p)
    planned = planned_keys(p.parent)
    if planned is not None:
        df = _set_aside(df, ~df["key"].isin(planned), p, f"their trials are not in {p.parent / PLAN} (rows added "
                        "by hand or by another sweep)")
    df = _set_aside(df, _bad_percent(df), p, f"errors outside [0, 100] ({', '.join(PERCENT)} and the per-epoch "
                    "errors are percentages)")
    if len(df) == 0:
        raise DseError(f"{p}: no row of the results table is left to analyse")
    return df


def _set_aside(df, mask, where, why: str):
    """df without the rows of `mask`, with one warning naming how many and why."""
    n = int(mask.sum())
    if n:
        log.warning("%s: %d row%s set aside: %s", where, n, "s" * (n != 1), why)
        df = df[~mask].reset_index(drop=True)
    return df


def _bad_percent(df):
    """Rows with an error that is not a number in [0, 100] (missing errors are fine: a failed trial has none)."""
    import math

    import pandas as pd

    def bad(v) -> bool:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return False
        return isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100

    mask = pd.Series(False, index=df.index)
    for c in PERCENT:
        if c in df.columns:
            mask |= df[c].map(lambda v: bad(v.item() if hasattr(v, "item") else v))
    if "errors" in df.columns:
        lists = df["errors"].map(lambda vs: vs.tolist() if hasattr(vs, "tolist") else vs)  # Parquet gives arrays
        mask |= lists.map(lambda vs: isinstance(vs, (list, tuple)) and any(bad(v) for v in vs))
    return mask


def dedupe(df, where=""):
    """One row per trial: `repeat` (0 when absent) and `key` (the id when absent) filled in, and only the first row
    of a key kept, with one warning (folders written by two concurrent sweeps before dse locked them)."""
    if "repeat" not in df.columns:
        df = df.assign(repeat=0)
    df["repeat"] = df["repeat"].fillna(0).astype(int)
    keys = df["key"] if "key" in df.columns else None
    fill = df["id"].where(df["repeat"] == 0, df["id"] + ":" + df["repeat"].astype(str))
    df["key"] = fill if keys is None else keys.fillna(fill)
    dup = df["key"].duplicated()
    if dup.any():
        log.warning("%s: %d duplicate rows (the same trial recorded twice); keeping the first of each", where,
                    int(dup.sum()))
        df = df[~dup].reset_index(drop=True)
    return df
