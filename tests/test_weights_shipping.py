"""Weights shipped as bytes (what a Ray batch driver sends its workers), loaded without any disk.

The "worker" here is this process with FIXATIVE_MODEL_DIR and the cache pointed at empty folders
and downloads off, so any lookup on disk or network would fail; the in-memory store is reset by
monkeypatch after each test.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from fixative.batch.work import JobSpec
from fixative.errors import MissingWeights
from fixative.models import weights
from fixative.models.registry import TAE_MODELS, load_encoder, weight_bytes_for
from tests.conftest import MODELS


@pytest.fixture
def driver(monkeypatch):
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(MODELS))
    monkeypatch.setenv("FIXATIVE_OFFLINE", "1")


@pytest.fixture
def bare_worker(tmp_path, monkeypatch):
    """No weights on this 'node', no downloads; the memory store starts empty and is restored."""
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FIXATIVE_OFFLINE", "1")
    monkeypatch.setattr(weights, "_IN_MEMORY", {})
    monkeypatch.setattr(weights, "_MEMORY_ONLY", False)


def _load_uncached(name: str) -> torch.nn.Module:
    return load_encoder.__wrapped__(name, "cpu", torch.float32)


def test_driver_reads_encoder_and_decoder_with_their_sha256(driver):
    files = {f.filename: f for f in weight_bytes_for(["taef2", "taef2"])}
    assert sorted(files) == ["taef2_decoder.pth", "taef2_encoder.pth"]
    for name, file in files.items():
        assert file.data == (MODELS / name).read_bytes()
        assert file.sha256 == hashlib.sha256(file.data).hexdigest()
    assert files["taef2_encoder.pth"].sha256 == TAE_MODELS["taef2"].encoder_pin[0]


def test_driver_without_the_weights_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FIXATIVE_OFFLINE", "1")
    with pytest.raises(MissingWeights, match="taef2_encoder.pth not found"):
        weight_bytes_for(["taef2"])


def test_driver_refuses_a_file_that_does_not_match_its_pin(tmp_path, monkeypatch):
    real = (MODELS / "taef2_encoder.pth").read_bytes()
    (tmp_path / "taef2_encoder.pth").write_bytes(real[:-1] + bytes([real[-1] ^ 1]))
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(tmp_path))
    with pytest.raises(MissingWeights, match="does not match the published taef2_encoder.pth"):
        weight_bytes_for(["taef2"])


def test_worker_loads_the_same_model_from_memory_alone(driver, monkeypatch, tmp_path):
    shipped = weight_bytes_for(["taef2"])
    reference = _load_uncached("taef2")
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(tmp_path))  # now a worker: nothing on disk
    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(weights, "_IN_MEMORY", {})
    monkeypatch.setattr(weights, "_MEMORY_ONLY", False)
    with pytest.raises(MissingWeights):
        _load_uncached("taef2")  # the control: without the shipped bytes this worker has nothing
    weights.hold_in_memory(shipped)
    model = _load_uncached("taef2")
    assert model.has_decoder
    expected, got = reference.state_dict(), model.state_dict()
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)


def test_memory_only_worker_never_falls_back_to_its_disk(bare_worker, monkeypatch):
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(MODELS))  # taesana's file is there, but must not be used
    weights.hold_in_memory(weight_bytes_for(["taef2"]))
    with pytest.raises(MissingWeights, match="taesana_encoder.pth was not shipped"):
        _load_uncached("taesana")


def test_damaged_bytes_are_refused(bare_worker):
    encoder = weights.WeightBytes.read(MODELS / "taef2_encoder.pth", TAE_MODELS["taef2"].weight("encoder"))
    damaged = dataclasses.replace(encoder, data=encoder.data[:-1] + bytes([encoder.data[-1] ^ 1]))
    with pytest.raises(MissingWeights, match="arrived damaged"):
        weights.hold_in_memory([damaged])
    assert weights._IN_MEMORY == {}


def test_job_spec_carries_the_drivers_offline_setting(monkeypatch):
    monkeypatch.setenv("FIXATIVE_OFFLINE", "1")
    assert JobSpec(options={}).offline is True
    monkeypatch.setenv("FIXATIVE_OFFLINE", "0")
    assert JobSpec(options={}).offline is False
