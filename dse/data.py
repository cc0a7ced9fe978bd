"""Image classification data held in memory as normalised tensors, and vectorised batch augmentation."""
from __future__ import annotations

import codecs
import pickle
from types import MappingProxyType
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from dse.errors import DseError

NAMES = ("digits", "cifar10", "cifar100", "imagefolder")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")
CIFAR = MappingProxyType({  # name -> (folder, train files, val file, label key, classes)
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "labels", 10),
    "cifar100": ("cifar-100-python", ("train",), "test", "fine_labels", 100),
})
# The only globals a CIFAR pickle (numpy arrays, lists, dicts) needs.
SAFE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
})


@dataclass(frozen=True, repr=False, eq=False)
class Data:
    """A classification dataset in memory: float32 N×3×H×W images normalised with train mean/std, int64 labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: int
    res: int
    flip: bool

    @property
    def n_train(self) -> int:
        """Number of training images."""
        return len(self.y_train)

    @property
    def n_val(self) -> int:
        """Number of validation images."""
        return len(self.y_val)

    def __repr__(self) -> str:
        return (f"Data(name={self.name!r}, n_train={self.n_train}, n_val={self.n_val}, "
                f"classes={self.classes}, res={self.res}, flip={self.flip})")


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the numpy globals needed for array data; anything else is a DseError."""

    def __init__(self, f, where: str):
        super().__init__(f, encoding="bytes")
        self.where = where

    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):  # bytes written by Python 3 at protocol <= 2
            return latin1_encode
        raise DseError(f"refusing to unpickle global {module}.{name} in {self.where}")


def latin1_encode(s: str, enc: str = "latin1") -> bytes:
    """codecs.encode restricted to latin1, as used by protocol-2 pickles of bytes."""
    if enc not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"codec {enc!r} not allowed")
    return codecs.encode(s, "latin1")


def read_pickle(path: Path):
    """Load a pickle file with the restricted unpickler; any failure is a DseError naming the file."""
    try:
        with open(path, "rb") as f:
            return SafeUnpickler(f, str(path)).load()
    except DseError:
        raise
    except OSError as e:
        raise DseError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise DseError(f"corrupt pickle {path}: {type(e).__name__}: {e}") from None


def to_float(x: np.ndarray, res: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 N×3×h×w images → float32 N×3×res×res in [0, 1] (bilinear resize, chunked to bound memory)."""
    out = torch.empty((len(x), x.shape[1], res, res), dtype=torch.float32)
    for i in range(0, len(x), chunk):
        out[i:i + chunk] = resize(torch.from_numpy(np.ascontiguousarray(x[i:i + chunk])).float().div_(255), res)
    return out


def resize(x: torch.Tensor, res: int) -> torch.Tensor:
    """Bilinear resize of an N×C×H×W batch to res×res (antialiased when shrinking; no-op at the same size)."""
    if x.shape[-2:] == (res, res):
        return x
    return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False, antialias=res < min(x.shape[-2:]))


def normalise(x_train: torch.Tensor, x_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise both splits in place per channel with the train-set mean and std."""
    var, mean = torch.var_mean(x_train, dim=(0, 2, 3), keepdim=True)
    std = var.sqrt().clamp_min(1e-6)
    return x_train.sub_(mean).div_(std), x_val.sub_(mean).div_(std)


def make(name: str, xt, yt, xv, yv, classes: int, res: int, flip: bool) -> Data:
    """Assemble a Data from float [0, 1] image tensors and integer labels (normalising the images)."""
    xt, xv = normalise(xt, xv)
    return Data(name, xt, torch.as_tensor(yt, dtype=torch.int64), xv, torch.as_tensor(yv, dtype=torch.int64),
                int(classes), int(res), bool(flip))


def split(y: np.ndarray, val_frac: float, seed: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of indices 0..N-1 into (train, val)."""
    from sklearn.model_selection import train_test_split
    try:
        return train_test_split(np.arange(len(y)), test_size=val_frac, stratify=y, random_state=seed)
    except ValueError as e:
        raise DseError(f"cannot split {where} into train/val (val_frac={val_frac}): {e}") from None


def load_digits(res: int, seed: int, val_frac: float) -> Data:
    """scikit-learn's 8×8 digits (shipped with sklearn), stratified split, upsampled to res, grey → 3 channels."""
    from sklearn.datasets import load_digits as sk_digits
    d = sk_digits()
    y = d.target.astype(np.int64)
    tr, va = split(y, val_frac, seed, "digits")
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    x = resize(x, res).repeat(1, 3, 1, 1)
    return make("digits", x[tr].contiguous(), y[tr], x[va].contiguous(), y[va], 10, res, False)


def cifar_dir(path: Path, folder: str) -> Path:
    """The CIFAR batches folder: `path` itself or `path/folder`."""
    return path / folder if (path / folder).is_dir() else path


def read_cifar(path: Path, key: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle → (uint8 N×3×32×32 images, int64 labels), checking the layout."""
    if not path.is_file():
        raise DseError(f"missing CIFAR file {path}")
    d = read_pickle(path)
    if not isinstance(d, dict):
        raise DseError(f"wrong format in {path}: expected a dict, got {type(d).__name__}")
    d = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}
    x, y = d.get("data"), d.get(key)
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != 3072 or x.dtype != np.uint8:
        raise DseError(f"wrong format in {path}: 'data' must be a uint8 N×3072 array")
    try:
        y = np.asarray(y, dtype=np.int64)
    except (TypeError, ValueError):
        raise DseError(f"wrong format in {path}: {key!r} must be a list of integers") from None
    if y.shape != (len(x),) or (len(y) and (y.min() < 0 or y.max() >= classes)):
        raise DseError(f"wrong format in {path}: {key!r} must hold {len(x)} labels in 0..{classes - 1}")
    return x.reshape(-1, 3, 32, 32), y


def load_cifar(name: str, path: Path, res: int) -> Data:
    """CIFAR-10/100 from the standard python-pickle folder; the official test batch is the validation set."""
    folder, train_files, val_file, key, classes = CIFAR[name]
    root = cifar_dir(path, folder)
    parts = [read_cifar(root / f, key, classes) for f in train_files]
    xv, yv = read_cifar(root / val_file, key, classes)
    xt, yt = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return make(name, to_float(xt, res), yt, to_float(xv, res), yv, classes, res, True)


def class_dirs(path: Path) -> list[Path]:
    """Sorted non-hidden sub-folders of path."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_files(path: Path) -> list[Path]:
    """Sorted image files directly inside path."""
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def read_image(path: Path, res: int) -> np.ndarray:
    """One image file → uint8 3×res×res RGB (centre crop to square, bilinear resize)."""
    from PIL import Image, ImageOps
    try:
        with Image.open(path) as im:
            im = ImageOps.fit(im.convert("RGB"), (res, res), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except Exception as e:  # noqa: BLE001 - PIL raises many types for bad files
        raise DseError(f"cannot read image {path}: {e}") from None


def read_tree(path: Path, classes: list[str], res: int) -> tuple[np.ndarray, np.ndarray]:
    """All images under path/<class>/ → (uint8 N×3×res×res, labels by index in `classes`)."""
    xs, ys = [], []
    for d in class_dirs(path):
        if d.name not in classes:
            raise DseError(f"class folder {d} is not among the training classes")
        files = image_files(d)
        xs += [read_image(f, res) for f in files]
        ys += [classes.index(d.name)] * len(files)
    if not xs:
        raise DseError(f"no images ({'/'.join(IMAGE_EXTS)}) in class folders under {path}")
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def load_imagefolder(path: Path, res: int, seed: int, val_frac: float) -> Data:
    """An ImageNet-style tree path/<class>/<image>; uses path/train + path/val if both exist, else a stratified split."""
    tv = (path / "train", path / "val")
    root = tv[0] if all(p.is_dir() for p in tv) else path
    classes = [d.name for d in class_dirs(root)]
    if not classes:
        raise DseError(f"no class folders in {root}")
    if root is tv[0]:
        (xt, yt), (xv, yv) = read_tree(tv[0], classes, res), read_tree(tv[1], classes, res)
    else:
        x, y = read_tree(root, classes, res)
        tr, va = split(y, val_frac, seed, str(root))
        xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
    return make("imagefolder", to_float(xt, res), yt, to_float(xv, res), yv, len(classes), res, True)


def load_data(name: str = "digits", path: str | None = None, res: int = 32, seed: int = 0,
              val_frac: float = 0.2) -> Data:
    """Load a dataset by name (digits, cifar10, cifar100, imagefolder) into memory at resolution res."""
    name = str(name).lower()
    if name not in NAMES:
        raise DseError(f"unknown dataset {name!r}; known: {', '.join(NAMES)}")
    if not isinstance(res, int) or res < 1:
        raise DseError(f"dataset {name}: res must be a positive integer, got {res!r}")
    if not 0 < val_frac < 1:
        raise DseError(f"dataset {name}: val_frac must be in (0, 1), got {val_frac!r}")
    if name == "digits":
        return load_digits(res, seed, val_frac)
    if path is None:
        raise DseError(f"data set {name} needs a path: pass --data-path DIR (or data.path in the experiment file)")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DseError(f"dataset {name}: path {p} does not exist or is not a folder")
    if name == "imagefolder":
        return load_imagefolder(p, res, seed, val_frac)
    return load_cifar(name, p, res)


def augment(x: torch.Tensor, pad: int, flip: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Random crop with zero padding `pad` and optional horizontal flip for a whole batch, by one index gather."""
    n, c, h, w = x.shape
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    rows = dy + torch.arange(h)
    cols = dx + torch.arange(w)
    if flip:
        mirror = torch.rand((n, 1), generator=generator) < 0.5
        cols = torch.where(mirror, cols.flip(1), cols)
    idx = (rows[:, :, None] * x.shape[-1] + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return x.flatten(2).gather(2, idx).view(n, c, h, w)  # one gather: 2-3x faster than 4-D advanced indexing


def batches(data: Data, batch_size: int, *, train: bool, generator: torch.Generator | None = None,
            pad: int | None = 4) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) batches; train: shuffled, augmented, last partial batch dropped; val: in order, as is."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise DseError(f"batch_size must be a positive integer, got {batch_size!r}")
    pad = data.res // 8 if pad is None else pad
    if pad < 0:
        raise DseError(f"pad must be >= 0, got {pad}")
    x, y = (data.x_train, data.y_train) if train else (data.x_val, data.y_val)
    n = len(y)
    if not train:
        for i in range(0, n, batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
        return
    order = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if n >= batch_size else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        yield augment(x[idx], pad, data.flip, generator), y[idx]
