"""Datasets as float tensors [N, C, H, W] in [-1, 1].

Fashion-MNIST comes from the Debian package `dataset-fashion-mnist` (IDX files, MIT
licence); nothing is downloaded at run time.
"""
from __future__ import annotations

import gzip
import os
import subprocess

import numpy as np
import torch

FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                       "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]


def read_idx(path: str) -> np.ndarray:
    """An IDX file (gzip or plain): big-endian header with the magic 0x00 0x00 dtype ndim, then the dims."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"read_idx: {path} is not an unsigned-byte IDX file (header {data[:4]!r})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"read_idx: {path} holds {body.size} values, its header says {dims}")
    return body.reshape(dims)


def fashion_mnist_dir() -> str:
    """The folder holding the Fashion-MNIST IDX files, from AID_FASHION_MNIST or the Debian package."""
    if os.environ.get("AID_FASHION_MNIST"):
        return os.environ["AID_FASHION_MNIST"]
    try:
        files = subprocess.run(["dpkg", "-L", FASHION_MNIST_PACKAGE], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        files = []
    for f in files:
        if f.endswith(FASHION_MNIST_FILES["train"][0]):
            return os.path.dirname(f)
    raise FileNotFoundError(
        f"Fashion-MNIST not found: install it with `apt-get install {FASHION_MNIST_PACKAGE}` (Debian), "
        "or point AID_FASHION_MNIST at a folder holding the four IDX files")


def fashion_mnist(split: str = "train", resolution: int = 32, root: str | None = None):
    """(images [N, 1, R, R] float32 in [-1, 1], labels [N] int64). The 28×28 images are
    zero-padded (with the background value −1) to `resolution`."""
    if split not in FASHION_MNIST_FILES:
        raise ValueError(f"fashion_mnist: split must be 'train' or 'test', got {split!r}")
    if resolution < 28 or (resolution - 28) % 2:
        raise ValueError(f"fashion_mnist: resolution must be 28 + an even number of pixels, got {resolution}")
    root = root or fashion_mnist_dir()
    img_file, lbl_file = FASHION_MNIST_FILES[split]
    images = torch.from_numpy(read_idx(os.path.join(root, img_file)).copy())
    labels = torch.from_numpy(read_idx(os.path.join(root, lbl_file)).astype(np.int64))
    x = images.float().div(127.5).sub(1).unsqueeze(1)
    pad = (resolution - 28) // 2
    return torch.nn.functional.pad(x, (pad, pad, pad, pad), value=-1.0), labels


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats to uint8 as EDM writes images: (x·127.5 + 128) clipped, truncated."""
    return (x * 127.5 + 128).clip(0, 255).to(torch.uint8)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def to_8bit(img):
    """A PIL image with 8-bit channels: 16-bit grey (modes I;16*, and I as PNG opens 16-bit grey, or any I image
    with values above 255) scaled by 255/65535 and rounded, never clipped (clipping turns a 16-bit image black and
    white); a 32-bit float grey (F) taken as [0, 1]; any other mode as it is."""
    from PIL import Image
    if img.mode.startswith("I;16") or img.mode == "I":
        a = np.asarray(img, dtype=np.float64)
        sixteen = img.mode != "I" or img.format == "PNG" or (a.size and a.max() > 255)
        return Image.fromarray(np.clip(np.rint(a / 257.0 if sixteen else a), 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8), "L")
    return img


def _grey_palette(img) -> bool:
    """A P/PA image whose used palette entries are all grey (r = g = b)."""
    rgb = np.asarray(img.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _decode(data: bytes, name: str) -> np.ndarray:
    """Image bytes → uint8 [C, H, W]: grey as 1 channel (also 16-bit grey, scaled: to_8bit; grey with alpha, LA;
    a palette of greys, P/PA), colour as RGB (RGBA and colour palettes too). Alpha is dropped, not composited."""
    import io

    from PIL import Image
    try:
        img = to_8bit(Image.open(io.BytesIO(data)))
        grey = img.mode in ("L", "1", "LA", "La") or (img.mode in ("P", "PA") and _grey_palette(img))
        img = img.convert("L" if grey else "RGB")
    except Exception as e:  # PIL raises many types for bad files
        raise ValueError(f"cannot decode image {name}: {e}") from e
    a = np.asarray(img)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def image_dataset(path: str, max_images: int | None = None):
    """(images [N, C, H, W] float32 in [-1, 1], labels [N] int64 or None) from a folder of images
    or an EDM dataset zip (uncompressed PNGs, optional dataset.json with {"labels": [[name, int], ...]})."""
    import json
    import zipfile
    if os.path.isdir(path):
        names = sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)

        def read(n):
            with open(os.path.join(path, n), "rb") as f:
                return f.read()
    elif zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        names = sorted(zf.namelist())
        read = zf.read
    else:
        raise FileNotFoundError(f"image_dataset: {path} is neither a folder nor a zip file")
    images = [n for n in names if n.lower().endswith(IMAGE_SUFFIXES)][:max_images]
    if not images:
        raise ValueError(f"image_dataset: no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
    arrays = [_decode(read(n), n) for n in images]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"image_dataset: images in {path} differ in shape: {sorted(shapes)[:4]}")
    x = torch.from_numpy(np.stack(arrays)).float().div(127.5).sub(1)
    labels = None
    if "dataset.json" in names:
        table = json.loads(read("dataset.json")).get("labels")
        if table is not None:
            by_name = {n.replace("\\", "/"): int(c) for n, c in table}
            labels = torch.tensor([by_name[n.replace("\\", "/")] for n in images], dtype=torch.int64)
    return x, labels
