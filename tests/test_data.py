"""Tests for dse.data: the readers (digits, IDX, fake CIFAR, fake ImageFolder), safe unpickling, uint8 storage,
splits and subsets, where files are looked for, and the batch views (pad-crop, RandomResizedCrop, test view)."""
import gzip
import os
import pickle
import random
import struct
from math import exp, log, sqrt

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from dse.data import (Data, crop_resize, eval_view, load_data, pad_crop, rrc_boxes, train_batches, train_view,
                      val_batches)
from dse.errors import DseError
from dse.train.recipe import Augment, Eval


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", res=16)


def fake_batch(n, key, classes, rng):
    """A CIFAR-style batch dict with the real (bytes) key layout."""
    return {b"batch_label": b"fake", key: [int(v) for v in rng.integers(0, classes, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


def write(path, obj, protocol=2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


@pytest.fixture
def cifar10(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        write(root / f"data_batch_{i}", fake_batch(8, b"labels", 10, rng), protocol=2 if i % 2 else 5)
    write(root / "test_batch", fake_batch(6, b"labels", 10, rng), protocol=4)
    return tmp_path


def test_digits_uint8_grey_split_and_stats(digits):
    d = digits
    assert (d.n_train, d.n_val, d.classes, d.res, d.flip, d.channels, d.size, d.val) == \
        (1437, 360, 10, 16, False, 1, 8, "split")
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape == (1437, 1, 8, 8) and d.y_train.dtype == torch.int64
    assert int(d.x_train.max()) == 255 and int(d.x_train.min()) == 0  # sklearn's 0..16 scaled to 0..255
    x = d.x_train.double() / 255
    assert torch.allclose(d.mean.double(), x.mean(), atol=1e-6) and torch.allclose(d.std.double(), x.std(), atol=1e-4)
    counts = torch.bincount(d.y_val, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    xb, _ = next(val_batches(d, 360))  # normalised per batch with the training statistics
    assert xb.shape == (360, 1, 16, 16) and xb.dtype == torch.float32 and abs(float(xb.mean())) < 0.1
    assert "n_train=1437" in repr(d) and d.info()["channels"] == 1


def test_digits_deterministic_and_seeded(digits):
    again = load_data("digits", res=16)
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(again.y_val, digits.y_val)
    other = load_data("digits", res=16, seed=1)
    assert not torch.equal(other.y_train, digits.y_train)


def test_cifar10_loads_folder_or_parent(cifar10):
    for path in (cifar10, cifar10 / "cifar-10-batches-py"):
        d = load_data("cifar10", path=str(path))
        assert (d.n_train, d.n_val, d.classes, d.res, d.flip, d.val) == (40, 6, 10, 32, True, "test")
        assert d.x_train.shape == (40, 3, 32, 32) and d.y_train.max() < 10
    small = load_data("cifar10", path=str(cifar10), res=16)
    assert next(val_batches(small))[0].shape == (6, 3, 16, 16)


def test_cifar10_pixel_layout_and_labels(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(1)
    batch = fake_batch(4, b"labels", 10, rng)
    for i in range(1, 6):
        write(root / f"data_batch_{i}", batch)
    write(root / "test_batch", batch)
    d = load_data("cifar10", path=str(tmp_path))
    assert torch.equal(d.x_val, torch.from_numpy(batch[b"data"].reshape(4, 3, 32, 32)))  # row-major R, G, B planes
    assert d.y_val.tolist() == batch[b"labels"]


def test_cifar100_loads(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    rng = np.random.default_rng(0)
    train, test = fake_batch(12, b"fine_labels", 100, rng), fake_batch(5, b"fine_labels", 100, rng)
    write(root / "train", train)
    write(root / "test", test)
    d = load_data("cifar100", path=str(root))
    assert (d.n_train, d.n_val, d.classes) == (12, 5, 100)
    assert d.y_train.tolist() == train[b"fine_labels"]


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_not_executed(cifar10):
    marker = cifar10 / "pwned"
    write(cifar10 / "cifar-10-batches-py" / "data_batch_3", {b"data": Evil(marker), b"labels": []})
    with pytest.raises(DseError, match=r"refusing to unpickle global .*system.*data_batch_3"):
        load_data("cifar10", path=str(cifar10))
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [
    (b"not a pickle at all", "corrupt pickle"),
    (pickle.dumps([1, 2, 3]), "wrong format"),
    (pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}), "wrong format"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 99]}), "wrong format"),
])
def test_bad_cifar_files(cifar10, content, match):
    (cifar10 / "cifar-10-batches-py" / "test_batch").write_bytes(content)
    with pytest.raises(DseError, match=f"{match}.*test_batch"):
        load_data("cifar10", path=str(cifar10))


def test_missing_cifar_file(cifar10):
    (cifar10 / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(DseError, match="no cifar10 files in"):
        load_data("cifar10", path=str(cifar10))


def make_images(root, classes, n, size=(10, 7)):
    from PIL import Image
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            colour = (255, 0, 0) if "red" in c else (0, 0, 255)
            Image.new("RGB", size, colour).save(root / c / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_imagefolder_split_and_labels(tmp_path):
    make_images(tmp_path, ["blue_is_b", "a_red"], 5)  # sorted: a_red -> 0 (red), blue_is_b -> 1 (blue)
    (tmp_path / "a_red" / "notes.txt").write_text("ignored")
    d = load_data("imagefolder", path=str(tmp_path), res=8, val_frac=0.4)
    assert (d.n_train, d.n_val, d.classes, d.res, d.size, d.val) == (6, 4, 2, 8, 8, "split")
    assert torch.bincount(d.y_val).tolist() == [2, 2]
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val)):
        red_minus_blue = x[:, 0].float().mean((1, 2)) - x[:, 2].float().mean((1, 2))
        assert ((red_minus_blue > 0) == (y == 0)).all()


def test_imagefolder_train_val_folders(tmp_path):
    make_images(tmp_path / "train", ["a", "b", "c"], 2)
    make_images(tmp_path / "val", ["a", "c"], 1)
    d = load_data("imagefolder", path=str(tmp_path), res=4)
    assert (d.n_train, d.n_val, d.classes, d.val) == (6, 2, 3, "test")
    assert d.y_val.tolist() == [0, 2]


def test_imagefolder_corrupt_image(tmp_path):
    make_images(tmp_path, ["a", "b"], 3)
    (tmp_path / "b" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DseError, match="cannot read image .*bad.png"):
        load_data("imagefolder", path=str(tmp_path))


def test_bad_inputs(tmp_path):
    with pytest.raises(DseError, match="known: digits, fashion_mnist, mnist, kmnist, cifar10, cifar100, imagefolder"):
        load_data("svhn")
    with pytest.raises(DseError, match="does-not-exist"):
        load_data("cifar10", path=str(tmp_path / "does-not-exist"))
    with pytest.raises(DseError, match="needs a path"):
        load_data("imagefolder")
    with pytest.raises(DseError, match=f"no class folders in {tmp_path}"):
        load_data("imagefolder", path=str(tmp_path))
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DseError, match=f"no images .*{tmp_path}"):
        load_data("imagefolder", path=str(tmp_path))
    with pytest.raises(DseError, match="no cifar100 files"):
        load_data("cifar100", path=str(tmp_path))
    with pytest.raises(DseError, match="res"):
        load_data("digits", res=0)
    with pytest.raises(DseError, match="val: test: digits has no test split"):
        load_data("digits", val="test")
    make_images(tmp_path / "tree", ["a", "b"], 2)
    with pytest.raises(DseError, match="imagefolder has no val/ folder"):
        load_data("imagefolder", path=str(tmp_path / "tree"), val="test")


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST, KMNIST)

def idx_bytes(a: np.ndarray) -> bytes:
    """An IDX file by the format's definition: 0, 0, 0x08 (unsigned byte), ndim, big-endian uint32 sizes, data."""
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def write_idx(folder, n_train=60, n_test=20, gz=True, size=28, seed=0):
    """Fake MNIST-format files: labels cycle 0..9, each image's pixels hold its index and label."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        x = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        x[:, 0, 0] = np.arange(n) % 256
        out[split] = (x, y)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{split}-{kind}-ubyte"
            data = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reads_both_splits_exactly(tmp_path, gz):
    raw = write_idx(tmp_path / "m", gz=gz)
    d = load_data("mnist", path=str(tmp_path / "m"), res=16)
    assert (d.n_train, d.n_val, d.classes, d.channels, d.size, d.res, d.val, d.flip) == \
        (60, 20, 10, 1, 28, 16, "test", False)
    assert torch.equal(d.x_train[:, 0], torch.from_numpy(raw["train"][0]))
    assert torch.equal(d.x_val[:, 0], torch.from_numpy(raw["t10k"][0]))
    assert d.y_val.tolist() == raw["t10k"][1].tolist()


def test_idx_val_split_and_stratified_seeded_subset(tmp_path):
    write_idx(tmp_path / "k", n_train=200)
    split = load_data("kmnist", path=str(tmp_path / "k"), val="split", val_frac=0.25)
    assert (split.n_train, split.n_val, split.val) == (150, 50, "split")
    assert torch.bincount(split.y_val).tolist() == [5] * 10
    a = load_data("kmnist", path=str(tmp_path / "k"), n_train=50)
    b = load_data("kmnist", path=str(tmp_path / "k"), n_train=50)
    c = load_data("kmnist", path=str(tmp_path / "k"), n_train=50, seed=3)
    assert a.n_train == 50 and a.n_val == 20 and torch.bincount(a.y_train).tolist() == [5] * 10
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    ids = a.x_train[:, 0, 0, 0].long()  # each image's index in the file: a subset, in file order
    assert len(set(ids.tolist())) == 50 and ids.tolist() == sorted(ids.tolist())
    assert torch.equal(a.y_train, ids % 10)
    v = load_data("kmnist", path=str(tmp_path / "k"), n_val=10)
    assert v.n_val == 10 and torch.bincount(v.y_val).tolist() == [1] * 10 and v.n_train == 200
    with pytest.raises(DseError, match="data.n_val: 21 is larger than the validation set of kmnist \\(20 images\\)"):
        load_data("kmnist", path=str(tmp_path / "k"), n_val=21)


def test_idx_found_through_dse_data_or_a_clear_not_found(tmp_path, monkeypatch):
    write_idx(tmp_path / "mnist")
    monkeypatch.setenv("DSE_DATA", str(tmp_path))
    assert load_data("mnist").n_train == 60
    monkeypatch.delenv("DSE_DATA")
    with pytest.raises(DseError) as e:
        load_data("mnist")
    msg = str(e.value)
    assert "data set mnist not found: looked in $DSE_DATA/mnist ($DSE_DATA is not set)" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "--data-path" in msg and "\n" not in msg
    from dse.data import DATASETS, locate
    fm = DATASETS["fashion_mnist"]
    with pytest.raises(DseError, match="apt-get install dataset-fashion-mnist.*zalandoresearch"):
        locate(fm.__class__(**{**fm.__dict__, "folders": (str(tmp_path / "nowhere"),)}), None)


def corrupt(folder, name, fn):
    p = folder / f"{name}.gz"
    p.write_bytes(gzip.compress(fn(gzip.decompress(p.read_bytes()))))


@pytest.mark.parametrize("name, fn, match", [
    ("train-images-idx3-ubyte", lambda b: b"\x00\x00\x08\x01" + b[4:], r"wrong magic number 0x00000801 .*0x00000803"),
    ("t10k-labels-idx1-ubyte", lambda b: b"\x00\x00\x0d\x01" + b[4:], "wrong magic number 0x00000d01"),
    ("train-images-idx3-ubyte", lambda b: b[:-7], r"truncated: the header says 60x28x28 = 47040 bytes, the body has"),
    ("train-labels-idx1-ubyte", lambda b: b[:2], "not an IDX file"),
    ("t10k-labels-idx1-ubyte", lambda b: idx_bytes(np.zeros(19, np.uint8)), "has 20 images but .* has 19 labels"),
    ("t10k-labels-idx1-ubyte", lambda b: idx_bytes(np.full(20, 12, np.uint8)), "label 12 is out of range 0..9"),
])
def test_bad_idx_files(tmp_path, name, fn, match):
    write_idx(tmp_path)
    corrupt(tmp_path, name, fn)
    with pytest.raises(DseError, match=match):
        load_data("mnist", path=str(tmp_path))


def test_bad_gzip_and_bad_subset(tmp_path):
    write_idx(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DseError, match="t10k-images-idx3-ubyte.gz: (cannot read|corrupt gzip)"):
        load_data("mnist", path=str(tmp_path))
    write_idx(tmp_path)
    with pytest.raises(DseError, match="n_train: 61 is larger than the training set of mnist \\(60 images\\)"):
        load_data("mnist", path=str(tmp_path), n_train=61)
    with pytest.raises(DseError, match="n_train: 9 is smaller than the number of classes of mnist \\(10\\)"):
        load_data("mnist", path=str(tmp_path), n_train=9)


FMNIST = "/usr/share/datasets/fashion-mnist"


def test_real_fashion_mnist():
    """The Debian package's files (.ci/setup installs them where it can): the published sizes, 6,000 training and
    1,000 test images per class (Xiao et al. 2017)."""
    if not os.path.isdir(FMNIST) and not os.environ.get("CI"):
        pytest.skip(f"{FMNIST} missing (apt-get install dataset-fashion-mnist); CI installs it")
    full = load_data("fashion_mnist", res=28)
    assert (full.n_train, full.n_val, full.classes, full.channels, full.size, full.val) == \
        (60000, 10000, 10, 1, 28, "test")
    assert torch.bincount(full.y_train).tolist() == [6000] * 10 and torch.bincount(full.y_val).tolist() == [1000] * 10
    assert 0.27 < float(full.mean) < 0.30 and 0.34 < float(full.std) < 0.37  # the values torchvision users quote
    sub = load_data("fashion_mnist", res=16, n_train=5000)
    assert sub.n_train == 5000 and torch.bincount(sub.y_train).tolist() == [500] * 10
    assert torch.equal(sub.x_val, full.x_val)


# ---------------------------------------------------------------- batch views

def coords(n=64, res=8, c=3):
    """uint8 images that encode their pixel coordinates and their own index, and the identity normalisation."""
    ramp = torch.arange(res) + 1
    x = torch.zeros(n, c, res, res, dtype=torch.uint8)
    x[:, 0] = ramp[None, None, :]  # column index + 1
    x[:, 1] = ramp[None, :, None]  # row index + 1
    x[:, 2] = (torch.arange(n) % 256)[:, None, None]  # sample id
    return x


def toy(flip, n=64, res=8):
    x = coords(n, res)
    y = torch.arange(n) % 10
    one = torch.full((3,), 1 / 255)  # x / 255 / (1 / 255): the batches carry the raw values
    return Data("toy", x, y, x.clone(), y.clone(), 10, res, flip, torch.zeros(3), one)


def test_pad_crop_shapes_crops_and_no_flip():
    x = coords().float()
    out = pad_crop(x, 2, False, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    cols = out[:, 0]
    inside = cols > 0
    # no flips: along each row, non-padded column values increase by exactly 1
    diffs = cols[:, :, 1:] - cols[:, :, :-1]
    both = inside[:, :, 1:] & inside[:, :, :-1]
    assert (diffs[both] == 1).all()
    first = torch.stack([c[i].min() for c, i in zip(cols, inside)])
    assert len(set(first.tolist())) > 1  # crop offsets vary across the batch
    assert (out[:, 2][inside] == x[:, 2][inside.nonzero(as_tuple=True)[0], 0, 0]).all()


def test_pad_crop_flips_some():
    x = coords().float()
    out = pad_crop(x, 0, True, torch.Generator().manual_seed(0))
    flipped = out[:, 0, 0, 0] == 8  # first column holds the last column index
    assert 0 < int(flipped.sum()) < len(out)
    assert torch.equal(out[flipped], x[flipped].flip(-1)) and torch.equal(out[~flipped], x[~flipped])


def test_batches_train_deterministic_and_shuffled():
    d = toy(flip=True, n=70)
    run = lambda s: list(train_batches(d, 16, torch.Generator().manual_seed(s)))  # noqa: E731
    a, b, c = run(3), run(3), run(4)
    assert len(a) == 4 and all(x.shape == (16, 3, 8, 8) for x, _ in a)  # partial batch dropped
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    assert not all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, c))
    ids = torch.cat([x[:, 2].amax((1, 2)) for x, _ in a]).long()  # sample id survives any crop
    assert len(set(ids.tolist())) == 64 and ids.tolist() != sorted(ids.tolist())
    assert torch.equal(torch.cat([y for _, y in a]), d.y_train[ids])
    with pytest.raises(DseError, match="batch_size"):
        next(train_batches(d, 0))


def test_batches_val_in_order_unchanged():
    d = toy(flip=True, n=70)
    got = list(val_batches(d, 16))
    assert [len(y) for _, y in got] == [16, 16, 16, 16, 6]
    assert torch.equal(torch.cat([x for x, _ in got]), d.x_val.float())


def test_default_pad_scales_with_res_and_the_view_resizes(digits):
    x, _ = next(train_batches(digits, 8, torch.Generator().manual_seed(0)))
    assert x.shape == (8, 1, 16, 16)
    x, _ = next(train_batches(digits, 8, torch.Generator().manual_seed(0), size=12, aug=Augment(crop="rrc")))
    assert x.shape == (8, 1, 12, 12)


def reference_boxes(n, h, w, scale, ratio, rng):
    """torchvision's RandomResizedCrop.get_params as its documentation defines it, one image at a time."""
    out = []
    for _ in range(n):
        for _ in range(10):
            area = h * w * rng.uniform(*scale)
            r = exp(rng.uniform(log(ratio[0]), log(ratio[1])))
            cw, ch = int(round(sqrt(area * r))), int(round(sqrt(area / r)))
            if 0 < cw <= w and 0 < ch <= h:
                out.append((rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw))
                break
        else:  # centre crop, the aspect ratio clamped into the range
            if w / h < min(ratio):
                cw, ch = w, int(round(w / min(ratio)))
            elif w / h > max(ratio):
                ch, cw = h, int(round(h * max(ratio)))
            else:
                cw, ch = w, h
            out.append(((h - ch) // 2, (w - cw) // 2, ch, cw))
    return np.array(out, dtype=float)


@pytest.mark.parametrize("h, w, scale, ratio", [(28, 28, (0.08, 1.0), (3 / 4, 4 / 3)),
                                                (24, 32, (0.08, 1.0), (3 / 4, 4 / 3)),
                                                (16, 16, (0.6, 1.0), (0.25, 4.0))])  # many fallbacks
def test_rrc_follows_torchvision_s_law(h, w, scale, ratio):
    n = 20000
    ours = rrc_boxes(n, h, w, scale, ratio, torch.Generator().manual_seed(0)).numpy().astype(float)
    ref = reference_boxes(n, h, w, scale, ratio, random.Random(0))
    assert ((ours[:, 0] >= 0) & (ours[:, 0] + ours[:, 2] <= h) & (ours[:, 1] >= 0) & (ours[:, 1] + ours[:, 3] <= w)
            & (ours[:, 2] >= 1) & (ours[:, 3] >= 1)).all()
    for stat in (lambda b: b[:, 2] * b[:, 3] / (h * w), lambda b: b[:, 3] / b[:, 2],  # area fraction, aspect
                 lambda b: (b[:, 0] + 0.5) / (h - b[:, 2] + 1), lambda b: (b[:, 1] + 0.5) / (w - b[:, 3] + 1)):
        assert ks_2samp(stat(ours), stat(ref)).pvalue > 1e-3
    full = lambda b: np.mean((b[:, 2] == h) & (b[:, 3] == w))  # noqa: E731 - the fallback's share
    assert abs(full(ours) - full(ref)) < 0.02


def test_rrc_law_test_can_fail():
    """The same statistic tells a uniform (not log-uniform) aspect ratio apart."""
    n, rng, h = 20000, np.random.default_rng(0), 28
    r = rng.uniform(0.25, 4.0, n)
    ref = reference_boxes(n, h, h, (0.08, 1.0), (0.25, 4.0), random.Random(0))
    assert ks_2samp(np.log(r), np.log(ref[:, 3] / ref[:, 2])).pvalue < 1e-6


def test_crop_resize_copies_a_box_of_the_output_size_and_mirrors():
    x = coords(4, 12).float()
    boxes = torch.tensor([[0, 0, 6, 6], [3, 2, 6, 6], [6, 6, 6, 6], [2, 5, 6, 6]])
    out = crop_resize(x, boxes, 6)
    for k, (t, l, _, _) in enumerate(boxes.tolist()):
        assert torch.allclose(out[k], x[k, :, t:t + 6, l:l + 6], atol=1e-4)
    flipped = crop_resize(x, boxes, 6, torch.tensor([True, False, True, False]))
    assert torch.allclose(flipped[0], out[0].flip(-1), atol=1e-4) and torch.allclose(flipped[1], out[1], atol=1e-4)
    half = crop_resize(x, torch.tensor([[0, 0, 12, 12]] * 4), 6)  # the whole image at half size: 2x2 means
    assert torch.allclose(half[0, 0, 0], torch.arange(6.) * 2 + 1.5, atol=1e-4)


def test_train_view_none_only_resizes_and_flips():
    x = coords(32, 8).float()
    out = train_view(x, 8, crop="none", flip=True, generator=torch.Generator().manual_seed(1))
    flipped = out[:, 0, 0, 0] == 8
    assert 0 < int(flipped.sum()) < 32 and torch.equal(out[~flipped], x[~flipped])


def test_eval_view_is_resize_then_centre_crop():
    x = coords(2, 28).float()
    assert torch.equal(eval_view(x, 28), x)  # crop none at the stored size: the images as they are
    v = eval_view(x, 16, 1.143, "center")  # 28 px -> short side floor(16 * 1.143) = 18 -> centre 16 (offset 1)
    r18 = torch.nn.functional.interpolate(x, size=(18, 18), mode="bilinear", align_corners=False, antialias=True)
    assert v.shape == (2, 3, 16, 16) and torch.equal(v, r18[..., 1:17, 1:17])
    w = eval_view(x, 24, 1.143, "center")  # floor(24 * 1.143) = 27, offset round(1.5) = 2
    assert w.shape == (2, 3, 24, 24)
    assert torch.allclose(eval_view(x, 28, 1.0, "center"), x)  # resize 1: the centre crop is the whole image


def test_section_validation():
    for bad, match in [({"scale": [0.0, 1.0]}, "train.augment.scale: must be \\[low, high\\] with 0 < low"),
                       ({"scale": [0.5, 1.2]}, "train.augment.scale"), ({"scale": [0.8, 0.2]}, "train.augment.scale"),
                       ({"ratio": [0, 1]}, "train.augment.ratio: must be"), ({"ratio": [-1, 2]}, "train.augment.ratio"),
                       ({"crop": "random"}, "train.augment.crop: must be pad or rrc or none")]:
        with pytest.raises(DseError, match=match):
            Augment(**bad)
    with pytest.raises(DseError, match="eval.resize: must be a number in \\[1, 10\\]"):
        Eval(resize=0.875)
    with pytest.raises(DseError, match="eval.crop"):
        Eval(crop="corner")
