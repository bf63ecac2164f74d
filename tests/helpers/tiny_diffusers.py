"""Tiny random-weight diffusers models and pipelines, saved to a folder, for offline tests.

Real VAEs and pipelines are gigabytes; these have the same classes and file layout (``save_pretrained``
folders, ``model_index.json``, a CLIP tokenizer written from a small vocabulary) so the engine's
loading and rendering code runs for real, in seconds, with nothing downloaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

TEXT_WIDTH = 32
"""Hidden size of the tiny text encoder (= the UNet's cross-attention width)."""

WORDS = ["a", "an", "photo", "of", "cat", "dog", "artwork", "in", "the", "style", "distant", "art", "movement",
         "ukiyo", "e", "impressionism", "cubism", "pointillism"]
"""Words the tiny tokenizer knows whole; anything else falls back to single characters."""


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (same mapping as GPT-2/CLIP)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in keep:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_clip_tokenizer_files(folder: Path) -> Path:
    """A small but valid CLIP BPE vocabulary (vocab.json + merges.txt) that the helper writes itself."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_alphabet()
    tokens: list[str] = [*alphabet, *(c + "</w>" for c in alphabet)]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:  # merge left to right so every prefix of a known word is a token
            pair = (pieces[0], pieces[1])
            if pair not in merges:
                merges.append(pair)
                if pair[0] + pair[1] not in tokens:
                    tokens.append(pair[0] + pair[1])
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{left} {right}" for left, right in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def build_tiny_vae(seed: int = 0, latent_channels: int = 4, levels: int = 2, width: int = 8):
    """A random AutoencoderKL: ``levels`` down blocks (downscale 2**(levels-1)), GroupNorm of 4 groups."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    channels = tuple(width * min(2 ** i, 2) for i in range(levels))
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        layers_per_block=1, norm_num_groups=4, sample_size=32,
    ).eval()


def save_tiny_vae(folder: Path, seed: int = 0, latent_channels: int = 4, levels: int = 2) -> Path:
    """Save a tiny VAE as a diffusers folder (config.json + weights) and return the folder."""
    build_tiny_vae(seed, latent_channels, levels).save_pretrained(folder)
    return folder


def build_tiny_pipeline(folder: Path, seed: int = 0):
    """A random StableDiffusionPipeline: tiny UNet, tiny CLIP text encoder, a VAE with the real
    SD downscale of 8 (so pipeline sizes stay realistic), DDIM scheduler, no safety checker."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=4, norm_num_groups=4,
    ).eval()
    vocab_dir = write_clip_tokenizer_files(folder.parent / f"{folder.name}-vocab")
    tokenizer = CLIPTokenizer(str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"), model_max_length=77)
    text_config = CLIPTextConfig(
        vocab_size=len(json.loads((vocab_dir / "vocab.json").read_text(encoding="utf-8"))),
        hidden_size=TEXT_WIDTH, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, projection_dim=TEXT_WIDTH,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=1,
    )
    text_encoder = CLIPTextModel(text_config).eval()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    vae = build_tiny_vae(seed + 1, latent_channels=4, levels=4)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def save_tiny_pipeline(folder: Path, seed: int = 0) -> Path:
    """Save a tiny Stable Diffusion pipeline as a diffusers folder (model_index.json + parts)."""
    pipe = build_tiny_pipeline(folder, seed)
    pipe.save_pretrained(folder)
    return folder


def save_to_fake_hub_cache(cache: Path, repo_id: str, saved_folder: Path, subfolder: str = "",
                           revision: str = "0" * 40) -> Path:
    """Lay a saved folder out as a Hugging Face hub cache entry for ``repo_id`` (offline repo-id loading)."""
    import shutil

    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    destination = snapshot / subfolder if subfolder else snapshot
    shutil.copytree(saved_folder, destination, dirs_exist_ok=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot
