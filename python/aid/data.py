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
