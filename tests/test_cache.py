"""The prepared cache (dse data prepare): decoded once, in parallel, interrupted and resumed; read as memory maps by
load_data and by a sweep; RAM bounded while a cache larger than the allowed memory is iterated; no links followed."""
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import dse
from dse.data import imagefolder, load_data
from dse.data.cache import Interrupted, prepare, verify
from dse.errors import DseError
from dse.results import load_results

N_TRAIN, N_VAL, CLASSES = 2000, 400, 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A generated ImageNet-style tree of small JPEGs (12×16 and 16×12: the centre crop matters), 4 classes."""
    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for c in range(CLASSES):
            (root / split / f"c{c}").mkdir(parents=True)
        for i in range(n):
            c = i % CLASSES
            a = rng.integers(0, 256, (12, 16, 3) if i % 2 else (16, 12, 3), dtype=np.uint8)
            a[..., c % 3] = 40 + 50 * c  # a class signal a tiny net can learn
            Image.fromarray(a).save(root / split / f"c{c}" / f"{i:05d}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def cache(folder, tmp_path_factory):
    """The folder prepared at 8 px by two processes, interrupted after 700 images, then resumed."""
    out = tmp_path_factory.mktemp("caches") / "c8"
    with pytest.raises(Interrupted) as e:
        prepare(folder, out, 8, workers=2, progress=False, _stop_after=700)
    first = e.value.done
    assert not (out / "meta.json").exists() and (out / "state.json").exists()
    done = np.load(out / "train_done.npy")
    assert 0 < done.sum() < len(done)  # some chunks on disk, some not
    m = prepare(folder, out, 8, workers=2, progress=False, resume=True)
    return out, first, m


def test_prepare_interrupt_resume_gives_the_images_decoded_directly(folder, cache):
    out, first, m = cache
    assert 700 <= first < N_TRAIN + N_VAL and m["decoded"] == N_TRAIN + N_VAL - first  # nothing decoded twice
    assert not (out / "state.json").exists() and not (out / "train_done.npy").exists()
    # the same images and labels as the in-memory imagefolder reader decodes one by one (PIL, then stack)
    xt, yt, xv, yv, classes = imagefolder.read(folder, 8)
    d = load_data("cache", path=str(out), res=8)
    assert (d.n_train, d.n_val, d.classes, d.channels, d.size, d.val) == (N_TRAIN, N_VAL, CLASSES, 3, 8, "test")
    assert np.array_equal(d.x_train.numpy(), xt) and np.array_equal(d.y_train.numpy(), yt)
    assert np.array_equal(d.x_val.numpy(), xv) and np.array_equal(d.y_val.numpy(), yv)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["classes"] == classes == ["c0", "c1", "c2", "c3"]
    assert meta["counts"] == {"train": N_TRAIN, "val": N_VAL}
    # the recorded checksums are the files' sha256 (what sha256sum prints); the stats are the training images'
    for f, h in meta["sha256"].items():
        assert hashlib.sha256((out / f).read_bytes()).hexdigest() == h
    assert meta["mean"] == pytest.approx(list(xt.mean((0, 2, 3)) / 255), rel=1e-6)  # float32 precision
    assert meta["std"] == pytest.approx(list((xt / 255).std((0, 2, 3))), rel=1e-6)
    assert torch.equal(d.mean, torch.tensor(meta["mean"], dtype=torch.float32))
    # the tensors lie over the memory maps of the cache's files (/proc/self/maps): nothing was copied
    maps = [ln.split() for ln in open("/proc/self/maps") if ln.rstrip().endswith("_images.npy")]
    for t, name in ((d.x_train, "train_images.npy"), (d.x_val, "val_images.npy")):
        span = [[int(x, 16) for x in m[0].split("-")] for m in maps if m[-1] == str(out / name)]
        assert any(lo <= t.data_ptr() < hi for lo, hi in span)
    assert verify(out) == []
    # a finished cache resumes to itself; a different res is refused
    assert prepare(folder, out, 8, progress=False, resume=True)["decoded"] == 0
    with pytest.raises(DseError, match="different res"):
        prepare(folder, out, 16, progress=False, resume=True)


def test_cli_prepare_and_refusals(folder, cache, tmp_path, run_cli):
    out = cache[0]
    code, _, err = run_cli("data", "prepare", "imagefolder", folder, "--res", "8", "-o", out)
    assert code == 1 and err.strip().count("\n") == 0 and "already exists and is not empty" in err
    code, _, err = run_cli("data", "prepare", "imagefolder", folder, "--res", "8", "-o", tmp_path / "none", "--resume")
    assert code == 1 and "nothing to resume" in err and not (tmp_path / "none").exists()
    code, _, err = run_cli("data", "prepare", "imagefolder", tmp_path / "missing", "--res", "8", "-o", tmp_path / "x")
    assert code == 1 and "not a folder" in err and not (tmp_path / "x").exists()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    code, _, err = run_cli("data", "prepare", "imagefolder", folder, "--res", "8", "-o", link)
    assert code == 1 and "symbolic link" in err and not (tmp_path / "elsewhere").exists()
    # a cache whose file was swapped for a link, or cut short, is refused in one line
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in os.listdir(out):
        if f != ".lock":
            (bad / f).write_bytes((out / f).read_bytes())
    (bad / "val_labels.npy").unlink()
    (bad / "val_labels.npy").symlink_to(out / "val_labels.npy")
    with pytest.raises(DseError, match="val_labels.npy: is a symbolic link"):
        load_data("cache", path=str(bad), res=8)
    (bad / "val_labels.npy").unlink()
    (bad / "val_labels.npy").write_bytes((out / "val_labels.npy").read_bytes()[:-8])
    with pytest.raises(DseError, match="val_labels.npy: truncated"):
        load_data("cache", path=str(bad), res=8)
    (bad / "val_labels.npy").write_bytes((out / "val_labels.npy").read_bytes())
    img = bytearray((bad / "train_images.npy").read_bytes())
    img[-1] ^= 0xFF
    (bad / "train_images.npy").write_bytes(bytes(img))
    assert verify(bad) == ["train_images.npy"]


FLAT = """
import re, resource, sys
import torch
from dse.data import load_data, train_batches, val_batches
from dse.train.recipe import Augment

torch.set_num_threads(1)
aug = Augment(crop="none", flip=False)
d = load_data("cache", path=sys.argv[1], res=64)
next(iter(train_batches(d, 128, torch.Generator().manual_seed(0), aug=aug)))  # lazy set-up before the limit
vm_data = int(re.search(r"VmData:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
allow = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_DATA, (vm_data + allow, resource.getrlimit(resource.RLIMIT_DATA)[1]))
seen = sum(len(y) for _, y in train_batches(d, 128, torch.Generator().manual_seed(0), aug=aug))
seen += sum(len(y) for _, y in val_batches(d, 128))
d = load_data("cache", path=sys.argv[1], res=64)  # loading again copies nothing either
try:
    d.x_train.clone()
    copied = "yes"
except (MemoryError, RuntimeError):
    copied = "refused"
print(seen, d.nbytes, copied)
"""


def test_ram_stays_flat_over_a_cache_larger_than_the_allowed_memory(tmp_path):
    """A 213 MB cache (16384 + 1024 images at 64 px, written here in its documented format) is iterated for an epoch
    of training batches and the validation set, by a process whose RLIMIT_DATA allows it 64 MB more than it holds
    once set up: only batches are copied (the map's pages are the kernel's page cache, not the process's). The same
    limit refuses a copy of the images, so the test can fail. glibc's mmap threshold is fixed at 1 MB for the run, so
    that a freed batch goes back to the kernel at once (its default threshold adapts, and heap fragmentation would
    make the margin depend on the order of allocations)."""
    n, nv, res, allow = 16384, 1024, 64, 64 << 20
    out = tmp_path / "big"
    out.mkdir()
    for split, k in (("train", n), ("val", nv)):
        np.lib.format.open_memmap(out / f"{split}_images.npy", "w+", np.uint8, (k, 3, res, res)).flush()  # sparse
        np.save(out / f"{split}_labels.npy", np.arange(k, dtype=np.int64) % 10)
    meta = {"format": "dse-cache", "version": 1, "res": res, "channels": 3, "classes": [str(c) for c in range(10)],
            "counts": {"train": n, "val": nv}, "mean": [0.5] * 3, "std": [0.25] * 3, "sha256": {}}
    (out / "meta.json").write_text(json.dumps(meta))
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    p = subprocess.run([sys.executable, "-c", FLAT, str(out), str(allow)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    seen, nbytes, copied = p.stdout.split()
    assert int(seen) == n + nv and int(nbytes) > 3 * allow and copied == "refused"


def test_a_sweep_trains_on_the_cache_and_an_oom_trial_fails_alone(cache, tmp_path):
    """Two trials read the cache (1 epoch); one runs out of memory at its 2nd step (torch's OutOfMemoryError,
    injected): its row is a one-line failure with the figures, the other finishes; every row has its peak memory."""
    out = cache[0]
    samples = tmp_path / "s.jsonl"
    samples.write_text(dse.sample("anynetx_a", 2, flops=(None, 40e6), seed=4).to_jsonl())
    ids = [json.loads(x)["id"] for x in samples.read_text().splitlines()]
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / ids[1]).write_text("oom:2")
    exp = {"name": "oncache", "samples": str(samples), "seed": 0, "data": {"name": "cache", "path": str(out), "res": 8},
           "train": {"epochs": 1, "batch_size": 256, "lr": 0.1, "warmup": 0}, "trial": {"cpus": 1}}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(exp))
    df = load_results(dse.sweep(dse.experiment.load(tmp_path / "e.yaml"), tmp_path / "run", progress=False,
                                _faults=str(faults))).set_index("id")
    assert df.loc[ids[1], "status"] == "failed"
    reason = df.loc[ids[1], "reason"]
    assert "\n" not in reason and re.match(r"out of memory: tried to allocate 2\.00 GiB; this trial's process "
                                           r"peaked at \d+\.\d\d GiB resident; lower train.batch_size", reason)
    for i in ids[:1]:
        assert df.loc[i, "status"] == "ok" and 0 <= df.loc[i, "error"] <= 100
        assert df.loc[i, "data"]["name"] == "cache" and df.loc[i, "data"]["n_train"] == N_TRAIN
        assert df.loc[i, "data"]["n_val"] == N_VAL
    assert (df["peak_mem"] > 50 << 20).all() and (df["peak_mem_kind"] == "rss").all()  # a Python + torch process
    assert (df["amp"] == "none").all() and (df["device"] == "cpu").all() and (df["gpus"] == 0).all()
