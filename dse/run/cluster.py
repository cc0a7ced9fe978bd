"""Ray itself: which cluster to join (checked before anything waits on it), a quiet start, and its resources."""
from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
from pathlib import Path

from ..errors import DseError

QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0",
             "RAY_DEDUP_LOGS": "1", "TUNE_RESULT_BUFFER_LENGTH": "1", "RAY_TRAIN_V2_ENABLED": "0",
             "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0", "PYTHONWARNINGS": "ignore",
             "TUNE_DISABLE_SIGINT_HANDLER": "1"}
RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air", "ray.data")


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


def quiet_env() -> None:
    """Ray's and Tune's switches for no usage stats, no auto loggers and no SIGINT capture (set before import)."""
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)


def ray_start(address: str | None, verbose: int = 0, cpus: int | None = None) -> None:
    """Start (or join) Ray quietly: no dashboard UI, no usage stats, no log flood; a DseError if the address is dead.
    At exit, the Ray that dse started is stopped with its children (_stop_at_exit)."""
    quiet_env()
    import ray

    if ray.is_initialized():
        return
    address = check_address(address)
    level = logging.INFO if verbose > 1 else (logging.ERROR if verbose else logging.CRITICAL)
    kw = dict(include_dashboard=False, log_to_driver=verbose > 0, configure_logging=True, logging_level=level)
    if address:  # a cluster's workers do not inherit this process's environment
        ray.init(address=address, runtime_env={"env_vars": {k: os.environ[k] for k in QUIET_ENV}}, **kw)
    else:
        ray.init(num_cpus=cpus or os.cpu_count(), **kw)
    for name in RAY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    atexit.unregister(_stop_at_exit)
    atexit.register(_stop_at_exit)  # registered after Ray's own exit hook, so it runs first


def _stop_at_exit() -> None:
    """At exit: stop the local Ray that ray_start started (or leave the cluster it joined) and wait for its
    processes, with SIGINT and SIGTERM ignored meanwhile (the process is ending anyway).

    Ray stops its raylet with SIGTERM, and the raylet ends its workers and agents. A second Ctrl-C during Ray's own
    exit hook used to cut that short: the driver then died, its raylet and GCS were SIGKILLed with it, and the
    DashboardAgent and RuntimeEnvAgent were left orphaned for a minute (each tries for 60 s to report the raylet's
    death to the dead GCS, deaf to SIGTERM meanwhile). Ray's own exit hook then finds nothing left to do."""
    import ray

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        if ray.is_initialized():
            ray.shutdown(wait_for_processes=True)
    except Exception:  # at exit: never a traceback
        pass


def check_local(cpus: float, address: str | None) -> None:
    """Before any folder is made: a local Ray has this machine's CPUs, so a larger trial can never start."""
    n = os.cpu_count() or 1
    if address is None and cpus > n:
        raise DseError(f"trial.cpus = {cpus:g} but this machine has {n} CPUs: no trial could ever start; lower "
                       "trial.cpus (or --cpus)")


def check_resources(cpus: float, gpus: float, local: bool) -> None:
    """Refuse a trial that needs more CPUs or GPUs than any one node of the cluster has (it would wait forever)."""
    import ray

    from .resources import refusal

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    why = refusal(cpus, gpus, nodes, "this machine" if local else "the Ray cluster")
    if why:
        raise DseError(why)
