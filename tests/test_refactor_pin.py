"""Pins protect()'s output pixels on CPU, so a refactor that claims "behaviour unchanged" is checked.

The constants were computed on the code before issue 12's refactor, with the objective of that
time (pull toward the target only, ``FIXATIVE_OBJECTIVE=target``) in fp32 (``FIXATIVE_PRECISION=fp32``):
issue 13's default objective and bf16 autocast are new behaviour, so the pin runs the old path,
which must stay bit-identical. If an intended change moves them, recompute them in the same commit
and say why in its message.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import fixative
from tests.conftest import painting
from tests.helpers.engine import REPO, engine_env

PINNED_BY_ISA = {
    # torch.backends.cpu.get_cpu_capability(): oneDNN's kernels round differently per instruction set.
    # Pinned on an AVX2-only AMD EPYC; style-auto again after the channels-last encoders (fa061d7).
    "AVX2": {"style-auto": "8438e20eb1524595739d56fabe4a5783452795096121a557ea6ba23f00e0eb80",
             "both-anchor-rgba": "4a86d8b7f11f6d6b8a20e47226053367cafeeea91b59f53285b2cc9f97a5b016"},
    # Pinned again on an AVX512 AMD EPYC (with AVX512-BF16; the pin runs fp32) at f22c9b2, whose engine is
    # 6b947dc's, which the AVX2 pin checked: one thread in fp32 gives the same bits as on AVX2 there.
    "AVX512": {"style-auto": "8438e20eb1524595739d56fabe4a5783452795096121a557ea6ba23f00e0eb80",
               "both-anchor-rgba": "4a86d8b7f11f6d6b8a20e47226053367cafeeea91b59f53285b2cc9f97a5b016"},
}
PINNED = PINNED_BY_ISA.get(torch.backends.cpu.get_cpu_capability(), {})


def _case(name: str) -> tuple[np.ndarray, dict, dict]:
    art = painting(size=64)
    if name == "style-auto":
        return art, {"quality": "fast", "steps": 3, "seed": 11, "device": "cpu"}, {}
    alpha = np.linspace(0, 255, 64 * 64).reshape(64, 64).astype(np.uint8)
    anchor = painting("the_scream_munch_1893.jpg", size=64)
    options = {"mode": "both", "quality": "fast", "steps": 3, "seed": 5, "device": "cpu",
               "intensity": "high", "robustness": "strong", "target_style": "neon-lines",
               "concept": "a night sky", "target_concept": "a scream"}
    return np.dstack([art, alpha]), options, {"anchor_images": [anchor]}


def _protected_digest(name: str) -> str:
    image, options, extra = _case(name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: float sums are then reduced in one fixed order
    try:
        out = fixative.protect(image, options, **extra).image
    finally:
        torch.set_num_threads(threads)
    return hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()


def test_protected_pixels_match_the_pinned_hash(fixative_home):
    """In a fresh process: caches filled by earlier tests (style latents, computed with more threads)
    would otherwise change the last bits."""
    isa = torch.backends.cpu.get_cpu_capability()
    if isa not in PINNED_BY_ISA:
        pytest.skip(f"no pin for this CPU's instruction set ({isa}): pin it from a commit the other pins checked")
    code = "from tests.test_refactor_pin import PINNED, _protected_digest\n" \
           "import json; print(json.dumps({name: _protected_digest(name) for name in sorted(PINNED)}))"
    env = {**engine_env(fixative_home), "FIXATIVE_OBJECTIVE": "target", "FIXATIVE_PRECISION": "fp32",
           "FIXATIVE_MIMIC_REPORT": "off"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == PINNED
