"""What the latent-space tests share: the tiny random models and images of tiny_latent, written once per module."""
import pytest
from tiny_latent import write_latent_files


@pytest.fixture(scope="module")
def latent_files(tmp_path_factory):
    """Paths: vae (folder), cond, uncond, guide (EDM2 safetensors), images (folder with labels)."""
    pytest.importorskip("diffusers", reason="the latent pipeline needs diffusers (pip install 'aid-ext[latent]')")
    return write_latent_files(tmp_path_factory.mktemp("latent"))
