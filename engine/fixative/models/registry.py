"""Registry of attackable encoders by name, and the one door through which they are loaded.

Default set: ``taef2`` alone (``fixative.options.DEFAULT_MODEL``). It is the only real pretrained encoder available offline here,
it is tiny (2.7 MB, about 1.2 s per 256² step on 2 CPU cores), it distils the FLUX.2 VAE (the
newest latent space mimics fine-tune on), and Fixative's per-model normalised ensemble lets users
add ``taesdxl``/``taef1`` or a full diffusers VAE (``vae-sdxl``) when they have the weights and time.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from fixative.errors import UnknownModel
from fixative.models.base import ImageEncoder
from fixative.models.weights import WeightBytes, WeightFile, find_weight, weight_source

TAESD_COMMIT = "5cccb12dc72074a4be35680c3b108548a7c69978"


def _tae_url(filename: str) -> str:
    base = os.environ.get("FIXATIVE_WEIGHTS_URL", f"https://github.com/madebyollin/taesd/raw/{TAESD_COMMIT}")
    return f"{base.rstrip('/')}/{filename}"


@dataclass(frozen=True)
class TAESpec:
    name: str
    latent_channels: int
    variant: str
    training_area: int
    latent_space: str
    encoder_pin: tuple[str | None, str | None, int | None]  # sha256, git blob sha1, size
    decoder_pin: tuple[str | None, str | None, int | None] | None

    def weight(self, part: str) -> WeightFile:
        pin = self.encoder_pin if part == "encoder" else self.decoder_pin
        assert pin is not None
        filename = f"{self.name}_{part}.pth"
        return WeightFile(filename, _tae_url(filename), sha256=pin[0], git_sha1=pin[1], size=pin[2])


SD15, BIG = 512 * 512, 1024 * 1024
TAE_MODELS: dict[str, TAESpec] = {
    spec.name: spec
    for spec in [
        TAESpec("taesd", 4, "f8", SD15, "Stable Diffusion 1.x/2.x",
                (None, "65f85afc58480128926e52086fbf0fdc61c2c9b5", None),
                (None, "5915a429fc08eba4adf62bf74f96705b8b0d5c1f", None)),
        TAESpec("taesdxl", 4, "f8", BIG, "SDXL",
                (None, "56dfb7ed13ac774bc28dcd981f072f26eb7c5e99", None),
                (None, "477bc7e9604f418029508e72ac8719bb9d048291", None)),
        TAESpec("taesd3", 16, "f8", BIG, "Stable Diffusion 3",
                (None, "9678667c0e3e4b648a36daaa8094b1732ae4fb67", None),
                (None, "7943be72a9151d0b330c5d8a4fbb885d889b60a1", None)),
        TAESpec("taef1", 16, "f8", BIG, "FLUX.1",
                (None, "d8ee13fa3a1ff9a92643669d718e4b0827daafa5", None),
                (None, "b772c9c4e6d3b79d06b277be59296389591783d3", None)),
        TAESpec("taef2", 32, "f8_gn", BIG, "FLUX.2",
                ("10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6", None, 2704692),
                ("0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5", None, 2704756)),
        TAESpec("taesana", 32, "f32", BIG, "Sana DC-AE f32c32",
                ("858f4e4cc293f88efaf58107f4154b960b9ced0cb5d9c050dad11f926b618c1f", None, 2537004),
                None),
    ]
}

# Full diffusers VAEs (GPU users). "vae:<repo id or folder>[#subfolder]" loads any other.
DIFFUSERS_ALIASES: dict[str, tuple[str, str, int]] = {
    "vae-sd15": ("stable-diffusion-v1-5/stable-diffusion-v1-5", "vae", SD15),
    "vae-sdxl": ("stabilityai/sdxl-vae", "", BIG),
    "vae-flux": ("black-forest-labs/FLUX.1-schnell", "vae", BIG),
}


def check_model_name(name: str) -> str:
    if name in TAE_MODELS or name in DIFFUSERS_ALIASES or name.startswith("vae:"):
        return name
    known = ", ".join([*TAE_MODELS, *DIFFUSERS_ALIASES])
    raise UnknownModel(f"unknown model '{name}'; known models: {known}, or vae:<repo id or folder>")


def build_tae(name: str, with_decoder: bool = False) -> ImageEncoder:
    """An untrained instance of a TAE model's architecture (tests; loading fills the weights)."""
    from fixative.models.tae import TinyAutoEncoder

    spec = TAE_MODELS[check_model_name(name)]
    with_decoder = with_decoder and spec.decoder_pin is not None
    return TinyAutoEncoder(spec.name, spec.latent_channels, spec.variant, spec.training_area, with_decoder)


def _load_tae(name: str, with_decoder: bool, download: bool) -> ImageEncoder:
    spec = TAE_MODELS[name]
    encoder_source = weight_source(spec.weight("encoder"), download=download)
    decoder_source = None
    if with_decoder and spec.decoder_pin is not None:
        try:
            decoder_source = weight_source(spec.weight("decoder"), download=download)
        except Exception:  # the decoder only serves previews; protection works without it
            decoder_source = None
    model = build_tae(name, with_decoder=decoder_source is not None)
    state = torch.load(encoder_source, map_location="cpu", weights_only=True)
    model.encoder.load_state_dict(state)  # type: ignore[union-attr]
    if decoder_source is not None:
        model.decoder.load_state_dict(torch.load(decoder_source, map_location="cpu", weights_only=True))  # type: ignore[union-attr]
    return model


def weight_bytes_for(names: list[str], download: bool = True) -> list[WeightBytes]:
    """The weight files of these models, read and checked once, to ship to workers elsewhere.

    Encoders are required (a missing one raises here, on the driver); decoders are added when
    found (they only serve previews). Full diffusers VAEs are not shipped: each worker loads those."""
    files: list[WeightBytes] = []
    for name in dict.fromkeys(check_model_name(n) for n in names):
        spec = TAE_MODELS.get(name)
        if spec is None:
            continue
        encoder = spec.weight("encoder")
        files.append(WeightBytes.read(find_weight(encoder, download=download), encoder))
        if spec.decoder_pin is not None:
            decoder = spec.weight("decoder")
            try:
                files.append(WeightBytes.read(find_weight(decoder, download=download), decoder))
            except Exception:  # as in _load_tae: protection works without the decoder
                pass
    return files


@functools.lru_cache(maxsize=8)
def load_encoder(name: str, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 with_decoder: bool = True, download: bool = True) -> ImageEncoder:
    """Load (once per process) an encoder in eval mode with frozen weights."""
    check_model_name(name)
    if name in TAE_MODELS:
        model = _load_tae(name, with_decoder, download)
    else:
        from fixative.models.diffusers_vae import load_diffusers_vae

        if name in DIFFUSERS_ALIASES:
            repo, subfolder, area = DIFFUSERS_ALIASES[name]
        else:
            repo, _, subfolder = name[len("vae:"):].partition("#")
            area = BIG
        model = load_diffusers_vae(repo, subfolder, name=name, training_area=area)
    model = model.to(device=device, dtype=dtype).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def model_status(name: str) -> dict:
    """Is this model's encoder available without a download? (for `models list`, /v1/info)"""
    if name in TAE_MODELS:
        spec = TAE_MODELS[name]
        weight = spec.weight("encoder")
        from fixative.models.weights import search_dirs

        found = next((d / weight.filename for d in search_dirs() if (d / weight.filename).is_file()), None)
        return {"name": name, "kind": "tae", "latent_space": spec.latent_space,
                "available": found is not None, "path": str(found) if found else None}
    repo = DIFFUSERS_ALIASES[name][0] if name in DIFFUSERS_ALIASES else name[4:]
    return {"name": name, "kind": "diffusers-vae", "latent_space": repo,
            "available": Path(repo).is_dir(), "path": repo if Path(repo).is_dir() else None}


def available_models() -> list[dict]:
    return [model_status(name) for name in [*TAE_MODELS, *DIFFUSERS_ALIASES]]
