"""A real two-node Ray cluster on loopback: `dse sweep --address` spreads the trials over both nodes (integration).

Both nodes are `ray start --block` subprocesses in their own sessions with their own --temp-dir and auth token, so
the test never touches another Ray on the machine (no `ray stop`) and teardown ends exactly the processes it started.
"""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from dse.results import load_results

ROOT = Path(__file__).resolve().parents[1]
RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(RAY is None, reason="the ray command is not installed")]
NODES = """
import ray
ray.init(address="{address}", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
print(" ".join(n["NodeID"] for n in ray.nodes() if n["Alive"]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def session_pids(sid: int) -> list[int]:
    """Every live process in session `sid`: a node's daemons and the Ray workers they forked (Linux /proc)."""
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if os.getsid(int(d.name)) == sid:
                out.append(int(d.name))
        except (ProcessLookupError, PermissionError):
            pass
    return out


def stop(procs: list[subprocess.Popen], grace: float = 5.0) -> None:
    """SIGTERM each node's process group, then SIGKILL whatever is left in its session."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        for pid in [p.pid] + session_pids(p.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def wait_until(ok, what: str, procs, timeout: float = 90.0) -> None:
    end = time.time() + timeout
    while not ok():
        dead = [p.args[1:3] for p in procs if p.poll() is not None]
        if dead or time.time() > end:
            raise RuntimeError(f"{what}: " + (f"exited early: {dead}" if dead else f"not within {timeout:.0f} s"))
        time.sleep(0.5)


@pytest.fixture
def cluster():
    """(address, env) of a head and a worker node, 1 CPU each, on 127.0.0.1; both stopped afterwards."""
    tmp = tempfile.mkdtemp(prefix="dse-ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    procs: list[subprocess.Popen] = []

    def node(name: str, *args: str) -> subprocess.Popen:
        log = open(Path(tmp) / f"{name}.log", "w")
        cmd = [RAY, "start", *args, *common, f"--temp-dir={tmp}/{name}", f"--dashboard-agent-listen-port={free_port()}"]
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        procs.append(p)
        return p

    try:
        node("head", "--head", f"--port={port}", "--include-dashboard=false")
        wait_until(lambda: listening(port), "ray head", procs)
        node("worker", f"--address=127.0.0.1:{port}")
        wait_until(lambda: "Ray runtime started" in (Path(tmp) / "worker.log").read_text(), "ray worker", procs)
        yield f"127.0.0.1:{port}", env
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def test_sweep_runs_trials_on_both_nodes(tmp_path, cluster):
    address, env = cluster
    default = Path(env.get("RAY_TMPDIR") or env.get("TMPDIR") or "/tmp") / "ray" / "ray_current_cluster"
    before = default.read_text() if default.exists() else None
    ids = subprocess.run([sys.executable, "-c", NODES.format(address=address)], env=env, capture_output=True,
                         text=True, timeout=120)
    nodes = set(ids.stdout.split())
    assert ids.returncode == 0 and len(nodes) == 2, ids.stderr[-2000:]  # the worker joined the head
    exp = {"name": "cluster", "spaces": ["anynetx_a"], "n": 4, "flops": "-40M", "seed": 0,
           "data": {"name": "digits", "res": 8}, "train": {"epochs": 1, "batch_size": 256, "lr": 0.1, "warmup": 0},
           "trial": {"cpus": 1, "retries": 0}}
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(exp))
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "dse", "sweep", str(tmp_path / "cluster.yaml"), "--address", address,
                        "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    df = load_results(out)
    assert len(df) == 4 and (df["status"] == "ok").all()
    # 2 nodes x 1 CPU and 4 one-CPU trials: both nodes train, and every row names a node of this cluster
    assert set(df["node"]) == nodes
    # the cluster recorded its address in its own temp dir, not where a plain ray.init() on this machine looks
    assert (default.read_text() if default.exists() else None) == before
