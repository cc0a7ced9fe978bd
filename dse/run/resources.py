"""What a trial asks of Ray and of its device.

Pure rules first (no torch, no Ray): the device a trial trains on, Ray's resource request, whether a GPU request
can ever be met, how many trials run at once (fractional GPUs pack several trials on one GPU), and a packed
trial's share of the GPU's memory. Then the measurements a trial makes on itself (torch imported inside): its peak
memory, and the one-line reason of a trial that ran out of it.

Packing has known limits (README, "Several trials per GPU"): every trial process holds its own CUDA context (about
0.5 GB of the GPU's memory, outside PyTorch's allocator); without NVIDIA's MPS daemon, kernels of different
processes time-share the GPU rather than run side by side; and Ray counts a fraction against one GPU of one node,
while its cluster totals add up every node's GPUs."""
from __future__ import annotations

import math
import re

CONTEXT = 512 * 2 ** 20  # bytes of device memory a CUDA context takes outside PyTorch's allocator (about 0.5 GB)
PRECISION = 1e-4  # Ray counts fractional resources in steps of 1/10000
GiB = 2 ** 30


def device_for(device: str | None, gpus: float) -> str:
    """The device a trial trains on: trial.device when given, else `cuda` for a trial that asks Ray for GPUs (Ray
    makes only the GPUs it assigns visible to the trial, so `cuda` is the trial's own GPU), else `cpu`."""
    return device or ("cuda" if gpus > 0 else "cpu")


def gpus_problem(gpus: float) -> str | None:
    """Why Ray could not grant `gpus` GPUs to one trial (None: it can): a fraction must be in (0, 1] in steps of
    1/10000 (it lives on one GPU), and more than one GPU must be a whole number."""
    if gpus < 0:
        return "must be >= 0"
    if gpus > 1 and gpus != int(gpus):
        return "must be a fraction in (0, 1] (several trials share one GPU) or a whole number of GPUs"
    if 0 < gpus < 1 and abs(gpus / PRECISION - round(gpus / PRECISION)) > 1e-6:
        return f"must be a multiple of {PRECISION:g} (Ray's resource precision)"
    return None


def request(cpus: float, gpus: float) -> dict:
    """Ray's resource request of one trial (tune.with_resources)."""
    return {"cpu": cpus, "gpu": gpus}


def per_gpu(gpus: float) -> int:
    """Trials that share one GPU: floor(1 / gpus) for a fraction (0.25: 4, 0.3: 3), 1 for a whole GPU or more,
    0 for a trial that asks for none."""
    if gpus <= 0:
        return 0
    return max(1, int(math.floor(1 / gpus + PRECISION))) if gpus <= 1 else 1


def at_once(cpus: float, gpus: float, nodes: list[dict]) -> int:
    """How many such trials Ray can run at the same time on `nodes` (each a mapping of its resources, CPU and GPU
    as Ray's cluster state names them): per node, the CPUs' limit and, for a GPU trial, the GPUs' (a fraction is
    packed per_gpu(gpus) to a GPU; a trial of several GPUs needs them on one node)."""
    total = 0
    for node in nodes:
        n = int(math.floor(node.get("CPU", 0) / cpus + PRECISION)) if cpus > 0 else 10 ** 9
        if gpus > 0:
            have = int(node.get("GPU", 0) + PRECISION)
            n = min(n, have * per_gpu(gpus) if gpus <= 1 else have // int(gpus))
        total += n
    return total


def refusal(cpus: float, gpus: float, nodes: list[dict], where: str) -> str | None:
    """Why no trial of (cpus, gpus) could ever start on `nodes` (None: one can): a trial lives on one node, so a
    request is compared with the largest node, not the cluster's sum."""
    for what, need in (("CPU", cpus), ("GPU", gpus)):
        if not need:
            continue
        most = max((n.get(what, 0) for n in nodes), default=0)
        total = sum(n.get(what, 0) for n in nodes)
        if need > most + PRECISION:
            size = (f"{total:g} {what}s" if len(nodes) <= 1 else
                    f"{total:g} {what}s over {len(nodes)} nodes, at most {most:g} on one")
            return (f"trial.{what.lower()}s = {need:g} but {where} has {size}: no trial could ever start; lower "
                    f"trial.{what.lower()}s" + (" (or --cpus)" if what == "CPU" else ""))
    return None


def memory_share(gpus: float, total: int) -> int | None:
    """Bytes of the GPU's memory a packed trial may allocate: its fraction of the GPU less its CUDA context's 0.5 GB
    (None for a whole GPU or more: no cap). With 4 trials at 0.25, the 4 caps and the 4 contexts fill the GPU, so a
    trial that outgrows its share fails alone instead of starving the trials beside it."""
    if not 0 < gpus < 1:
        return None
    return max(0, int(gpus * total) - CONTEXT)


def gib(n: float | None) -> str:
    return "?" if n is None else f"{n / GiB:.2f} GiB"


# ---------------------------------------------------------------- measured by the trial (torch imported inside)

def _rss_peak() -> int | None:
    """The process's peak resident memory (VmHWM, bytes) on Linux; None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            m = re.search(r"^VmHWM:\s+(\d+)\s*kB", f.read(), re.M)
        return int(m.group(1)) * 1024 if m else None
    except OSError:
        return None


class Meter:
    """A trial's peak memory, from start() on: on CUDA, the bytes PyTorch's allocator held at its peak
    (torch.cuda.max_memory_allocated, its counter reset at start); on the CPU, the peak resident memory of the
    trial's process (Linux's VmHWM, reset at start through /proc/self/clear_refs so that a reused Ray actor reports
    this trial's peak; None where it cannot be reset). `kind` says which: cuda or rss."""

    def __init__(self, device: str):
        import torch

        self.dev = torch.device(device)
        self.kind = "cuda" if self.dev.type == "cuda" else "rss"
        self.ok = False

    def start(self) -> "Meter":
        import torch

        if self.kind == "cuda":
            torch.cuda.reset_peak_memory_stats(self.dev)
            self.ok = True
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # resets the peak resident set size (Linux >= 4.0)
                self.ok = True
            except OSError:
                self.ok = False
        return self

    def peak(self) -> int | None:
        import torch

        if not self.ok:
            return None
        if self.kind == "cuda":
            return int(torch.cuda.max_memory_allocated(self.dev))
        return _rss_peak()

    def total(self) -> int | None:
        """The device's memory (None on the CPU)."""
        import torch

        return int(torch.cuda.get_device_properties(self.dev).total_memory) if self.kind == "cuda" else None


def cap(device: str, gpus: float) -> int | None:
    """Cap PyTorch's allocator on a packed trial's GPU at memory_share(gpus) (torch.cuda's per-process memory
    fraction); returns the cap in bytes, None when there is none (a CPU trial, or a whole GPU)."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    total = torch.cuda.get_device_properties(dev).total_memory
    share = memory_share(gpus, total)
    if share is not None:
        torch.cuda.set_per_process_memory_fraction(share / total, dev)
    return share


def check_device(device: str) -> str | None:
    """The GPU's name for a CUDA device (None for the CPU); a one-line error when the trial cannot see one."""
    import os

    import torch

    from ..errors import DseError

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DseError(f"trial.device: {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if dev.type != "cuda":
        return None
    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA" if torch.version.cuda is None else
               f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}")
        raise DseError(f"trial.device {device}: no CUDA device is visible to this trial ({why})")
    return torch.cuda.get_device_name(dev)


def is_oom(e: BaseException) -> bool:
    """An out-of-memory error: torch's OutOfMemoryError (CUDA's), the CPU allocator's RuntimeError ("can't allocate
    memory") or Python's MemoryError."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(e, (oom, MemoryError)) or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))


def oom_reason(e: BaseException, peak: int | None, kind: str, share: int | None = None, total: int | None = None,
               gpus: float = 0) -> str:
    """One line for a trial that ran out of memory, with its figures: what it tried to allocate (from torch's
    message), its peak, its share of the GPU (when packed) and the GPU's size, and what to change."""
    m = re.search(r"Tried to allocate ([\d.]+ ?[KMGT]i?B)", str(e))
    tried = f"tried to allocate {m.group(1)}; " if m else ""
    if kind == "cuda":
        where = (f"its share is {gib(share)} (trial.gpus {gpus:g} of a {gib(total)} GPU, less 0.5 GiB for its CUDA "
                 "context)" if share is not None else f"the GPU has {gib(total)}")
        return (f"out of device memory: {tried}this trial's peak was {gib(peak)} allocated; {where}; lower "
                "train.batch_size or pack fewer trials per GPU (raise trial.gpus)")
    return (f"out of memory: {tried}this trial's process peaked at {gib(peak)} resident; lower train.batch_size, "
            "or give the trial a machine with more memory")


def release(device: str) -> None:
    """Give a finished (or failed) CUDA trial's cached device memory back, so that the trials packed beside it and
    the next trial of a reused actor can have it (nothing to do on the CPU)."""
    import gc

    import torch

    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
