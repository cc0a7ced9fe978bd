"""What a trial asks of Ray and of its device, on CPU: the device rule, Ray's request, packing arithmetic, refusals
of impossible GPU requests, a packed trial's memory share, its peak memory and its out-of-memory line."""
import numpy as np
import pytest
import torch

from dse.data.core import take
from dse.errors import DseError
from dse.run.experiment import Trial
from dse.run.resources import (CONTEXT, GiB, Meter, at_once, device_for, gpus_problem, is_oom, memory_share,
                           oom_reason, per_gpu, refusal, request)

H200 = 150_119_301_120  # bytes of a 139.81 GiB GPU (an H200's size)


def test_device_rule_and_trial_section():
    assert device_for(None, 0) == "cpu" and device_for(None, 0.25) == "cuda" and device_for(None, 2) == "cuda"
    assert device_for("cuda:1", 1) == "cuda:1" and device_for("cpu", 0.5) == "cpu"  # an explicit device wins
    assert Trial().device_name == "cpu" and Trial(gpus=0.25).device_name == "cuda"
    # the default is written as null, so folders made when the default was `cpu` still resume
    assert Trial(device="cpu").device is None and Trial(gpus=1, device="cuda").device is None
    assert Trial(gpus=1, device="cpu").device == "cpu"
    with pytest.raises(DseError, match=r"trial.device: cuda needs trial.gpus > 0 \(Ray hides the GPUs"):
        Trial(device="cuda")
    with pytest.raises(DseError, match=r"trial.gpus: must be a fraction in \(0, 1\] .* or a whole number of GPUs, "
                                       r"got 1.5"):
        Trial(gpus=1.5)
    with pytest.raises(DseError, match=r"trial.gpus: must be a multiple of 0.0001"):
        Trial(gpus=0.33333)
    assert gpus_problem(0.25) is None and gpus_problem(2) is None and gpus_problem(0) is None
    assert request(1, 0.25) == {"cpu": 1, "gpu": 0.25}


def test_the_imagenet64_experiment_packs_4_trials_per_gpu():
    from pathlib import Path

    from dse.run.experiment import load

    exp = load(Path(__file__).resolve().parents[1] / "experiments" / "regnet_imagenet64.yaml")
    t = exp.trial
    assert (exp.data.name, exp.data.res, t.device_name, per_gpu(t.gpus)) == ("cache", 64, "cuda", 4)
    assert request(t.cpus, t.gpus) == {"cpu": 2, "gpu": 0.25} and exp.train.amp == "bf16"


def test_packing_arithmetic():
    # trials per GPU: the whole part of 1 / fraction (Ray places a fraction on one GPU)
    assert [per_gpu(g) for g in (0, 0.125, 0.25, 0.3, 0.5, 1, 2)] == [0, 8, 4, 3, 2, 1, 1]
    one = [{"CPU": 16, "GPU": 1}]
    assert at_once(1, 0.25, one) == 4 and at_once(1, 0.125, one) == 8 and at_once(1, 0, one) == 16
    assert at_once(4, 0.125, one) == 4  # CPUs bind first
    assert at_once(1, 0.3, [{"CPU": 16, "GPU": 2}]) == 6  # 3 per GPU, the 0.1 left on each is never used
    two = [{"CPU": 8, "GPU": 1}, {"CPU": 8, "GPU": 1}]
    assert at_once(1, 2, two) == 0 and at_once(1, 1, two) == 2 and at_once(1, 2, [{"CPU": 8, "GPU": 4}]) == 2
    assert at_once(0.5, 0, [{"CPU": 2}]) == 4


def test_refusals_compare_with_one_node():
    assert refusal(1, 0.25, [{"CPU": 2}], "this machine") == (
        "trial.gpus = 0.25 but this machine has 0 GPUs: no trial could ever start; lower trial.gpus")
    assert refusal(1, 0.25, [{"CPU": 2, "GPU": 1}], "this machine") is None
    # two nodes of 1 GPU add up to 2, but a trial of 2 GPUs lives on one node
    two = [{"CPU": 8, "GPU": 1}, {"CPU": 8, "GPU": 1}]
    assert refusal(1, 2, two, "the Ray cluster") == (
        "trial.gpus = 2 but the Ray cluster has 2 GPUs over 2 nodes, at most 1 on one: no trial could ever start; "
        "lower trial.gpus")
    assert refusal(12, 0, two, "the Ray cluster").startswith("trial.cpus = 12 but the Ray cluster has 16 CPUs over 2")
    assert refusal(3, 0, [{"CPU": 2}], "this machine").endswith("lower trial.cpus (or --cpus)")


def test_memory_share_of_a_packed_trial():
    # 4 trials at 0.25: four quarters less four 0.5 GiB contexts fill the GPU exactly
    share = memory_share(0.25, H200)
    assert share == H200 // 4 - CONTEXT and 4 * (share + CONTEXT) == H200
    assert memory_share(1, H200) is None and memory_share(2, H200) is None and memory_share(0, H200) is None
    assert memory_share(0.001, 2 * GiB) == 0  # a share smaller than a context leaves nothing


def test_out_of_memory_lines():
    e = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                               "139.81 GiB of which 1.25 GiB is free.\nIncluding non-PyTorch memory ...")
    assert is_oom(e) and is_oom(MemoryError()) and not is_oom(RuntimeError("x"))
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                       "tried to allocate 12582912 bytes. Error code 12 (Cannot allocate memory)")  # torch 2.13's text
    assert is_oom(cpu)
    line = oom_reason(e, 33 * GiB, "cuda", memory_share(0.25, H200), H200, 0.25)
    assert line == ("out of device memory: tried to allocate 2.00 GiB; this trial's peak was 33.00 GiB allocated; "
                    "its share is 34.45 GiB (trial.gpus 0.25 of a 139.81 GiB GPU, less 0.5 GiB for its CUDA "
                    "context); lower train.batch_size or pack fewer trials per GPU (raise trial.gpus)")
    assert oom_reason(MemoryError(), None, "rss") == (
        "out of memory: this trial's process peaked at ? resident; lower train.batch_size, or give the trial a "
        "machine with more memory")


PEAK = """
import numpy as np
from dse.run.resources import Meter
m = Meter("cpu").start()
assert m.kind == "rss" and m.total() is None
base = m.peak()
x = np.ones(64 << 20, dtype=np.uint8)  # 64 MB touched
grown = m.peak()
del x
assert base is not None and grown - base >= 60 << 20, (base, grown)
again = Meter("cpu").start().peak()  # a new trial in the same (reused) process starts from today's RSS
assert again < grown, (again, grown)
"""


def test_peak_memory_on_the_cpu_is_this_trial_s():
    """In a fresh process, so that memory freed by earlier tests (resident, reusable) cannot hide the growth."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_take_reads_only_its_rows():
    t = torch.arange(60, dtype=torch.uint8).view(10, 6)
    idx = torch.tensor([7, 1, 3])
    assert torch.equal(take(t, idx, torch.device("cpu")), t[[7, 1, 3]])
    assert torch.equal(take(t, slice(8, 12), torch.device("cpu")), t[8:])
