"""Which search plan an image gets: large files on a CPU see the 512 training bucket whole (one 512²
view per step), smaller ones keep two 256² views, so the 512² speed target is untouched."""

from __future__ import annotations

import pytest

import fixative.core as core
from fixative import protect
from fixative.errors import Cancelled
from tests.conftest import painting


@pytest.mark.parametrize(("height", "width", "on_cpu", "expected"), [
    (1024, 1024, True, core.LARGE_FILE_QUALITY["default"]),
    (600, 769, True, core.LARGE_FILE_QUALITY["default"]),
    (768, 768, True, core.QUALITY["default"]),
    (512, 512, True, core.QUALITY["default"]),
    (4096, 4096, False, core.QUALITY["default"]),  # a GPU already draws 768² views
])
def test_default_plan_depends_on_the_file_and_the_device(height, width, on_cpu, expected):
    assert core.search_plan("default", height, width, on_cpu) == expected


def test_large_file_plan_spends_more_pixels_per_step_on_fewer_larger_views():
    small, large = core.QUALITY["default"], core.LARGE_FILE_QUALITY["default"]
    assert large.view_px_cpu == 512 and large.views_per_step == 1
    assert large.views_per_step * large.view_px_cpu ** 2 == 2 * small.views_per_step * small.view_px_cpu ** 2
    assert large.steps == 30 and small.steps == 24  # small files: the 512² speed target with the decoded push


def test_qualities_without_a_large_file_plan_keep_their_own():
    for quality in set(core.QUALITY) - set(core.LARGE_FILE_QUALITY):
        assert core.search_plan(quality, 2000, 2000, True) == core.QUALITY[quality]


@pytest.mark.parametrize(("size", "view_px"), [((64, 800), 512), ((64, 700), 256)])
def test_protect_draws_its_views_from_the_plan_for_the_image(size, view_px, fixative_home, monkeypatch):
    """protect() itself, not only the table: the sampler it builds gets the plan's view size."""
    built = []
    original = core.ViewSampler

    def recording_sampler(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(core, "ViewSampler", recording_sampler)
    with pytest.raises(Cancelled):
        protect(painting(size=size), {"device": "cpu", "target_style": "op-art-stripes"}, cancel=lambda: True)
    assert [s.view_px for s in built] == [view_px]


def test_latent_warmup_steps_come_on_top_of_the_sampled_ones():
    plan = core.replace(core.QUALITY["fast"], latent_warmup_steps=3)
    sampler = core.ViewSampler(64, 64, plan.view_px_cpu, 16, 0.0)
    assert plan.steps_for(sampler) == core.QUALITY["fast"].steps_for(sampler) + 3
    assert all(p.latent_warmup_steps == 0 for table in (core.QUALITY, core.LARGE_FILE_QUALITY) for p in table.values())


def test_latent_warmup_pushes_the_whole_512_bucket_on_the_latent_only_first(fixative_home, monkeypatch):
    """The warm-up steps see the whole image at the 512 bucket, with no purification chain and no decoded
    push (no decode); the steps after them draw the plan's views and decode as the default does."""
    calls = []
    add_gradient, decode = core._Objective.add_gradient, core._decode

    def recording_add_gradient(self, optimizer, view, chain, noise_generator, latent_only=False):
        calls.append({"view": view, "chain": list(chain), "latent_only": latent_only, "decodes": 0})
        return add_gradient(self, optimizer, view, chain, noise_generator, latent_only=latent_only)

    def counting_decode(model, latent):
        calls[-1]["decodes"] += 1
        return decode(model, latent)

    monkeypatch.setattr(core._Objective, "add_gradient", recording_add_gradient)
    monkeypatch.setattr(core, "_decode", counting_decode)
    monkeypatch.setitem(core.LARGE_FILE_QUALITY, "default",
                        core.replace(core.LARGE_FILE_QUALITY["default"], latent_warmup_steps=2))
    image = painting(size=(64, 800))
    result = protect(image, {"device": "cpu", "steps": 4, "target_style": "op-art-stripes", "ai_report": "off"})
    assert result.stats.steps == 4 and len(calls) == 4
    for call in calls[:2]:
        view = call["view"]
        assert (view.top, view.left, view.bottom, view.right) == (0, 0, result.stats.height, result.stats.width)
        assert view.out_h * view.out_w <= 512 * 512 and max(view.out_h, view.out_w) >= 768  # the 512 bucket's area
        assert call["chain"] == [] and call["latent_only"] and call["decodes"] == 0
    for call in calls[2:]:
        assert not call["latent_only"] and call["decodes"] >= 1 and max(call["view"].out_h, call["view"].out_w) <= 512
    assert result.stats.psnr >= 35.5 - 0.05
