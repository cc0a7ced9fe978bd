"""An ImageNet-style tree, root/<class>/<image> (or root/train + root/val), decoded into memory as uint8 squares:
each image is centre-cropped to a square and resized to `size` (bilinear). For trees that do not fit in memory,
prepare a cache instead (dse data prepare)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DseError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


def class_dirs(path: Path) -> list[Path]:
    """Sorted non-hidden sub-folders of path."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_files(path: Path) -> list[Path]:
    """Sorted image files directly inside path."""
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def read_image(path: Path, size: int) -> np.ndarray:
    """One image file → uint8 3×size×size RGB (centre crop to square, bilinear resize)."""
    from PIL import Image, ImageOps
    try:
        with Image.open(path) as im:
            im = ImageOps.fit(im.convert("RGB"), (size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except Exception as e:  # noqa: BLE001 - PIL raises many types for bad files
        raise DseError(f"cannot read image {path}: {e}") from None


def read_tree(path: Path, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """All images under path/<class>/ → (uint8 N×3×size×size, labels by index in `classes`)."""
    xs, ys = [], []
    for d in class_dirs(path):
        if d.name not in classes:
            raise DseError(f"class folder {d} is not among the training classes")
        files = image_files(d)
        xs += [read_image(f, size) for f in files]
        ys += [classes.index(d.name)] * len(files)
    if not xs:
        raise DseError(f"no images ({'/'.join(IMAGE_EXTS)}) in class folders under {path}")
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def split_dirs(path: Path) -> tuple[Path, Path] | None:
    """(path/train, path/val) when both exist."""
    tv = (path / "train", path / "val")
    return tv if all(p.is_dir() for p in tv) else None


def read(path: Path, size: int):
    """(x_train, y_train, x_test, y_test, class names); the test split is path/val (None without one)."""
    tv = split_dirs(path)
    root = tv[0] if tv else path
    classes = [d.name for d in class_dirs(root)]
    if not classes:
        raise DseError(f"no class folders in {root}")
    xt, yt = read_tree(root, classes, size)
    xv, yv = read_tree(tv[1], classes, size) if tv else (None, None)
    return xt, yt, xv, yv, classes
