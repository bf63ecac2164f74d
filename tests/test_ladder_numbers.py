"""The intensity ladder that artists choose from carries the numbers the full benchmark measured
(issue 13): what a person sees and what the model sees, per intensity, in every dialog (the choice's
help is each plug-in's tooltip) and in the README. Regenerating the benchmark without updating them fails here."""

from __future__ import annotations

import json

from benchmarks.mimic import ladder_line, quality_line
from fixative.options import options_schema
from tests.conftest import REPO


def _ladder() -> dict:
    results = json.loads((REPO / "benchmarks" / "results" / "full.json").read_text())
    return results["mimic"]["ladder"]


def test_intensity_choices_carry_the_measured_ladder():
    field = next(f for f in options_schema()["fields"] if f["name"] == "intensity")
    ladder = _ladder()
    assert {c["value"] for c in field["choices"]} <= set(ladder)
    for choice in field["choices"]:
        assert ladder_line(ladder[choice["value"]]) in choice["help"], choice["value"]


def test_readme_ladder_matches_the_benchmark():
    readme = (REPO / "README.md").read_text()
    for intensity, measured in _ladder().items():
        assert f"`{intensity}`" in readme
        assert ladder_line(measured) in readme, intensity


def _first_painting() -> dict:
    results = json.loads((REPO / "benchmarks" / "results" / "full.json").read_text())
    return next(iter(results["mimic"]["paintings"].values()))


def test_max_quality_carries_its_measured_cost_and_gain():
    """`max` earns its place only with its price on it: the time against the default's and what the
    model sees, from the benchmark's first painting, in the dialogs' help and in the README."""
    painting = _first_painting()
    line = quality_line(painting["default"], painting["quality_max"])
    field = next(f for f in options_schema()["fields"] if f["name"] == "quality")
    max_help = next(c["help"] for c in field["choices"] if c["value"] == "max")
    assert line in max_help
    assert line in (REPO / "README.md").read_text()


def test_default_quality_time_matches_the_benchmark():
    results = json.loads((REPO / "benchmarks" / "results" / "full.json").read_text())
    seconds = next(t["value"] for t in results["targets"] if t["name"].startswith("default protect"))
    runs = [p["methods"]["fixative-default"] for p in results["strength"]["paintings"].values()]
    fp32 = [run["seconds_fp32"] for run in runs if "seconds_fp32" in run]
    field = next(f for f in options_schema()["fields"] if f["name"] == "quality")
    default_help = next(c["help"] for c in field["choices"] if c["value"] == "default")
    readme = (REPO / "README.md").read_text()
    if fp32:  # measured on a CPU with native bf16: both times, to the nearest 5 s
        wanted = (f"about {5 * round(seconds / 5)} s for a 512² crop on a 2-core CPU with bf16 "
                  f"({5 * round(sum(fp32) / len(fp32) / 5)} s in fp32)")
    else:
        wanted = f"about {5 * round(seconds / 5)} s for a 512² crop on a 2-core CPU (fp32)"
    assert wanted in default_help
    assert wanted in readme
