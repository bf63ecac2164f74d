"""50 clients at once against a real engine: each job ends done or 429, none lost, none mixed up."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.conftest import ART, MODELS, painting
from tests.helpers.engine import start_engine
from tests.helpers.images import decode, png_bytes, psnr

CLIENTS = 50
MAX_QUEUE = 4
QUICK = {"models": ["taef2"], "quality": "fast", "steps": 1, "robustness": "off", "target_style": "op-art-stripes"}


def distinct_inputs(count: int, size: int = 32) -> list[np.ndarray]:
    """Crops of the shared paintings at different places: every client sends a different picture."""
    names = sorted(path.name for path in ART.glob("*.jpg"))
    if not names:
        pytest.skip("../shared/art is missing")
    crops = []
    for index in range(count):
        name = names[index % len(names)]
        box = ((index // len(names)) * 0.11 % 1.0, (index * 0.37) % 1.0)
        crops.append(painting(name, size=size, box=box))
    return crops


def test_fifty_concurrent_clients_get_done_or_429_and_their_own_result(tmp_path):
    pytest.importorskip("fixative.core")
    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("taef2 weights missing")
    inputs = distinct_inputs(CLIENTS)
    assert len({crop.tobytes() for crop in inputs}) == CLIENTS
    engine = start_engine(tmp_path, "--max-queue", str(MAX_QUEUE), "--lease-seconds", "60")
    barrier = threading.Barrier(CLIENTS)

    def client(index: int) -> dict:
        barrier.wait(30)  # all submit at the same moment
        response = engine.request("POST", "/v1/jobs", timeout=120,
                                  files={"image": (f"{index}.png", png_bytes(inputs[index]))},
                                  data={"options": json.dumps(QUICK)})
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"]["code"] == "queue_full"
            return {"index": index, "outcome": 429}
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        status = engine.wait_job(job_id, timeout=600, poll=1.0)
        result = engine.request("GET", f"/v1/jobs/{job_id}/result", timeout=60)
        return {"index": index, "outcome": status["state"], "id": job_id,
                "image": decode(result.content) if result.status_code == 200 else None}

    try:
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = list(pool.map(client, range(CLIENTS)))
        elapsed = time.monotonic() - started
    finally:
        assert engine.stop() == 0, engine.log()

    assert len(outcomes) == CLIENTS
    states = [outcome["outcome"] for outcome in outcomes]
    assert set(states) <= {"done", 429}, states  # nothing failed, cancelled or lost
    done = [outcome for outcome in outcomes if outcome["outcome"] == "done"]
    assert len(done) >= MAX_QUEUE  # the first MAX_QUEUE arrivals always fit
    assert len({outcome["id"] for outcome in done}) == len(done)
    stack = np.stack(inputs).astype(np.float64)
    for outcome in done:
        image = outcome["image"]
        assert image is not None and image.shape == inputs[outcome["index"]].shape
        distances = ((stack - image.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
        assert int(np.argmin(distances)) == outcome["index"], "a client got someone else's image"
        assert psnr(image, inputs[outcome["index"]]) > 25
    print(f"{len(done)} done, {states.count(429)} refused with 429, {elapsed:.1f} s")
