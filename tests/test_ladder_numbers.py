"""The intensity ladder that artists choose from carries the numbers the full benchmark measured
(issue 13): what a person sees and what the model sees, per intensity, in every dialog (the choice's
help is each plug-in's tooltip) and in the README. Regenerating the benchmark without updating them fails here."""

from __future__ import annotations

import json

from benchmarks.mimic import ladder_line
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
