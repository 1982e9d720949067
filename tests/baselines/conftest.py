"""What the baselines' tests share: the 16-d Gaussian oracle problem and a tiny EDM backbone."""
import pytest
import torch

from aid.edm import EDMPrecond
from aid.eval.oracle import GaussianDenoiser, random_covariance

SHAPE = (1, 4, 4)


@pytest.fixture(scope="module")
def oracle():
    """A strongly correlated 16-d Gaussian (the linear-Gaussian oracle), one observed image y = m⊙x (returned
    masked), the left half known: (net, y, mask)."""
    cov = random_covariance(16, seed=4, decay=2.0)
    net = GaussianDenoiser(torch.zeros(16, dtype=torch.float64), cov, SHAPE)
    g = torch.Generator().manual_seed(0)
    y = (torch.linalg.cholesky(cov) @ torch.randn(16, dtype=torch.float64, generator=g)).reshape(SHAPE).float()
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    return net, mask * y, mask


@pytest.fixture
def tiny_edm():
    """A random 16×16 one-channel EDM backbone (seeded)."""
    torch.manual_seed(0)
    return EDMPrecond(16, 1, model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8]).eval()
