"""What the benchmark's tests share: Fashion-MNIST's test split (skipped where the package is not installed) and a
tiny random EDM backbone saved as a file, both built once per module."""
import pytest
import torch

from aid.core.checkpoint import save_module
from aid.edm import EDMPrecond


@pytest.fixture(scope="module")
def fmnist():
    from aid.data.datasets import fashion_mnist
    try:
        return fashion_mnist("test", 32)
    except FileNotFoundError as e:
        pytest.skip(f"Fashion-MNIST is not installed: {e}")


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    torch.manual_seed(0)
    net = EDMPrecond(img_resolution=32, img_channels=1, model_channels=8, channel_mult=[1, 2], num_blocks=1,
                     attn_resolutions=[], dropout=0.0)
    path = str(tmp_path_factory.mktemp("backbone") / "tiny.safetensors")
    save_module(net, path, "EDMPrecond", net.init_kwargs)
    return path
