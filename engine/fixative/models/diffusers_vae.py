"""Full diffusers ``AutoencoderKL`` VAEs (SD 1.x, SDXL, FLUX) behind the ImageEncoder interface."""

from __future__ import annotations

import torch

from fixative.errors import MissingWeights
from fixative.models.base import ImageEncoder
from fixative.models.weights import offline


class DiffusersVAE(ImageEncoder):
    """Wraps an AutoencoderKL: the latent is the posterior mean (deterministic, as mimics use)."""

    def __init__(self, vae, name: str, training_area: int) -> None:  # noqa: ANN001 - diffusers type
        super().__init__()
        self.vae = vae
        self.name = name
        self.training_area = training_area
        self.latent_channels = int(vae.config.latent_channels)
        self.downscale = 2 ** (len(vae.config.block_out_channels) - 1)

    @property
    def has_decoder(self) -> bool:
        return True

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(images * 2 - 1).latent_dist.mean

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((self.vae.decode(latents).sample + 1) / 2).clamp(0, 1)


def load_diffusers_vae(repo: str, subfolder: str = "", name: str = "vae", training_area: int = 1024**2,
                       vae=None) -> DiffusersVAE:  # noqa: ANN001
    if vae is None:
        try:
            from diffusers import AutoencoderKL
        except ImportError as exc:
            raise MissingWeights("diffusers is not installed: pip install 'fixative[diffusers]'") from exc
        try:
            vae = AutoencoderKL.from_pretrained(repo, subfolder=subfolder or None,
                                                local_files_only=offline())
        except (OSError, ValueError) as exc:
            raise MissingWeights(f"could not load the diffusers VAE '{repo}'"
                                 f"{' (subfolder ' + subfolder + ')' if subfolder else ''}: {exc}") from exc
    return DiffusersVAE(vae.float(), name, training_area)
