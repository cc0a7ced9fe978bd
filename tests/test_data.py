"""Tests for dse.data: loaders (digits, fake CIFAR, fake ImageFolder), safe unpickling, batch augmentation."""
import os
import pickle

import numpy as np
import pytest
import torch

from dse.data import Data, augment, batches, load_data
from dse.errors import DseError


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


def test_digits_shapes_split_and_normalisation(digits):
    d = digits
    assert (d.n_train, d.n_val, d.classes, d.res, d.flip) == (1437, 360, 10, 16, False)
    assert d.x_train.shape == (1437, 3, 16, 16) and d.x_val.shape == (360, 3, 16, 16)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert torch.isfinite(d.x_train).all() and torch.isfinite(d.x_val).all()
    assert torch.allclose(d.x_train.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(d.x_train.std((0, 2, 3)), torch.ones(3), atol=1e-3)
    assert torch.equal(d.x_train[:, 0], d.x_train[:, 2])  # grey repeated to 3 channels
    counts = torch.bincount(d.y_val, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    assert "n_train=1437" in repr(d)


def test_digits_deterministic_and_seeded(digits):
    again = load_data("digits", res=16)
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(again.y_val, digits.y_val)
    other = load_data("digits", res=16, seed=1)
    assert not torch.equal(other.y_train, digits.y_train)


def test_cifar10_loads_folder_or_parent(cifar10):
    for path in (cifar10, cifar10 / "cifar-10-batches-py"):
        d = load_data("cifar10", path=str(path))
        assert (d.n_train, d.n_val, d.classes, d.res, d.flip) == (40, 6, 10, 32, True)
        assert d.x_train.shape == (40, 3, 32, 32) and d.y_train.max() < 10
    small = load_data("cifar10", path=str(cifar10), res=16)
    assert small.x_val.shape == (6, 3, 16, 16)


def test_cifar10_pixel_layout_and_labels(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(1)
    batch = fake_batch(4, b"labels", 10, rng)
    for i in range(1, 6):
        write(root / f"data_batch_{i}", batch)
    write(root / "test_batch", batch)
    d = load_data("cifar10", path=str(tmp_path))
    raw = torch.from_numpy(batch[b"data"].reshape(4, 3, 32, 32)).float()
    # normalisation is per-channel affine, so correlation with the raw pixels is ~1 image by image
    for i in range(4):
        c = torch.corrcoef(torch.stack([raw[i, 1].flatten(), d.x_val[i, 1].flatten()]))[0, 1]
        assert c > 0.999
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
    with pytest.raises(DseError, match="missing CIFAR file .*data_batch_5"):
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
    assert (d.n_train, d.n_val, d.classes, d.res) == (6, 4, 2, 8)
    assert torch.bincount(d.y_val).tolist() == [2, 2]
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val)):
        red_minus_blue = x[:, 0].mean((1, 2)) - x[:, 2].mean((1, 2))
        assert ((red_minus_blue > 0) == (y == 0)).all()


def test_imagefolder_train_val_folders(tmp_path):
    make_images(tmp_path / "train", ["a", "b", "c"], 2)
    make_images(tmp_path / "val", ["a", "c"], 1)
    d = load_data("imagefolder", path=str(tmp_path), res=4)
    assert (d.n_train, d.n_val, d.classes) == (6, 2, 3)
    assert d.y_val.tolist() == [0, 2]


def test_imagefolder_corrupt_image(tmp_path):
    make_images(tmp_path, ["a", "b"], 3)
    (tmp_path / "b" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DseError, match="cannot read image .*bad.png"):
        load_data("imagefolder", path=str(tmp_path))


def test_bad_inputs(tmp_path):
    with pytest.raises(DseError, match="known: digits, cifar10, cifar100, imagefolder"):
        load_data("mnist")
    with pytest.raises(DseError, match="does-not-exist"):
        load_data("cifar10", path=str(tmp_path / "does-not-exist"))
    with pytest.raises(DseError, match="needs a path"):
        load_data("imagefolder")
    with pytest.raises(DseError, match=f"no class folders in {tmp_path}"):
        load_data("imagefolder", path=str(tmp_path))
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DseError, match=f"no images .*{tmp_path}"):
        load_data("imagefolder", path=str(tmp_path))
    with pytest.raises(DseError, match="missing CIFAR file"):
        load_data("cifar100", path=str(tmp_path))
    with pytest.raises(DseError, match="res"):
        load_data("digits", res=0)


def toy(flip, n=64, res=8):
    """Data whose images encode their own index and pixel coordinates, for checking crops and flips."""
    ramp = torch.arange(res, dtype=torch.float32) + 1
    x = torch.zeros(n, 3, res, res)
    x[:, 0] = ramp[None, None, :]  # column index + 1
    x[:, 1] = ramp[None, :, None]  # row index + 1
    x[:, 2] = torch.arange(n, dtype=torch.float32)[:, None, None]  # sample id
    y = torch.arange(n) % 10
    return Data("toy", x, y, x.clone(), y.clone(), 10, res, flip)


def test_augment_shapes_crops_and_no_flip():
    d = toy(flip=False)
    out = augment(d.x_train, 2, False, torch.Generator().manual_seed(0))
    assert out.shape == d.x_train.shape
    cols = out[:, 0]
    inside = cols > 0
    # no flips: along each row, non-padded column values increase by exactly 1
    diffs = cols[:, :, 1:] - cols[:, :, :-1]
    both = inside[:, :, 1:] & inside[:, :, :-1]
    assert (diffs[both] == 1).all()
    first = torch.stack([c[i].min() for c, i in zip(cols, inside)])
    assert len(set(first.tolist())) > 1  # crop offsets vary across the batch
    assert (out[:, 2][inside] == d.x_train[:, 2][inside.nonzero(as_tuple=True)[0], 0, 0]).all()


def test_augment_flips_some_when_enabled():
    d = toy(flip=True)
    out = augment(d.x_train, 0, True, torch.Generator().manual_seed(0))
    flipped = out[:, 0, 0, 0] == d.res  # first column holds the last column index
    assert 0 < int(flipped.sum()) < len(out)
    assert torch.equal(out[flipped], d.x_train[flipped].flip(-1))
    assert torch.equal(out[~flipped], d.x_train[~flipped])


def test_batches_train_deterministic_and_shuffled():
    d = toy(flip=True, n=70)
    run = lambda s: list(batches(d, 16, train=True, generator=torch.Generator().manual_seed(s)))
    a, b, c = run(3), run(3), run(4)
    assert len(a) == 4 and all(x.shape == (16, 3, 8, 8) for x, _ in a)  # partial batch dropped
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    assert not all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, c))
    ids = torch.cat([x[:, 2].amax((1, 2)) for x, _ in a]).long()  # sample id survives any crop
    assert len(set(ids.tolist())) == 64 and ids.tolist() != sorted(ids.tolist())
    assert torch.equal(torch.cat([y for _, y in a]), d.y_train[ids])


def test_batches_val_in_order_unchanged():
    d = toy(flip=True, n=70)
    got = list(batches(d, 16, train=False))
    assert [len(y) for _, y in got] == [16, 16, 16, 16, 6]
    assert torch.equal(torch.cat([x for x, _ in got]), d.x_val)


def test_batches_default_pad_scales_with_res(digits):
    x, _ = next(batches(digits, 8, train=True, generator=torch.Generator().manual_seed(0), pad=None))
    assert x.shape == (8, 3, 16, 16)
    with pytest.raises(DseError, match="batch_size"):
        next(batches(digits, 0, train=True))
