"""The option schema: one description of every option, and the tables keyed from it."""

from __future__ import annotations

import json

import pytest

from fixative.budget import BUDGETS
from fixative.core import QUALITY
from fixative.options import ProtectOptions, choice_values, option_fields, options_schema
from fixative.transforms import ROBUSTNESS

TABLES = {"intensity": BUDGETS, "quality": QUALITY, "robustness": ROBUSTNESS}
KINDS = {"choice", "text", "integer", "boolean", "list"}


@pytest.mark.parametrize("field", sorted(TABLES))
def test_every_allowed_value_has_a_table_entry(field):
    table = TABLES[field]
    assert choice_values(field), f"{field} has no allowed values"
    missing = [value for value in choice_values(field) if value not in table]
    assert not missing, f"{field} values {missing} have no entry in its lookup table"
    assert set(table) == set(choice_values(field)), f"{field}'s table has entries no option allows"


def test_schema_follows_the_contract():
    schema = options_schema()
    assert schema["version"] == 1
    assert json.loads(json.dumps(schema)) == schema, "SCHEMA must be plain JSON"
    names = [field["name"] for field in schema["fields"]]
    assert names == list(ProtectOptions.model_fields), "every ProtectOptions field, in dialog order"
    defaults = ProtectOptions()
    for field in schema["fields"]:
        assert field["kind"] in KINDS
        assert field["label"] and "_" not in field["label"] and field["help"]
        assert isinstance(field["dialog"], bool)
        assert field["default"] == getattr(defaults, field["name"])
        if field["kind"] == "choice":
            values = [choice["value"] for choice in field["choices"]]
            assert values == choice_values(field["name"])
            assert field["default"] in values
            assert all(choice["label"] and choice["help"] for choice in field["choices"])
        else:
            assert "choices" not in field
        for key, allowed in field.get("enabled_when", {}).items():
            assert set(allowed) <= set(choice_values(key))
    by_name = {field["name"]: field for field in schema["fields"]}
    assert [by_name[n]["kind"] for n in ("seed", "models", "strip_location", "concept")] == \
        ["integer", "list", "boolean", "text"]
    assert by_name["seed"]["minimum"] == 0 and by_name["steps"]["maximum"] == 2000
    dialog = [field["name"] for field in schema["fields"] if field["dialog"]]
    assert dialog == ["mode", "intensity", "quality", "robustness", "target_style", "concept", "target_concept"]


def test_target_style_suggests_auto_and_every_builtin_style():
    from fixative.targets import builtin_style_names

    field = next(f for f in options_schema()["fields"] if f["name"] == "target_style")
    assert field["suggestions"] == ["auto", *builtin_style_names()]
    assert "suggestions" not in next(f for f in option_fields(suggestions=False) if f["name"] == "target_style")


def test_intensity_help_states_the_budget_numbers():
    field = next(f for f in options_schema()["fields"] if f["name"] == "intensity")
    for choice in field["choices"]:
        budget = BUDGETS[choice["value"]]
        assert f"{budget.eps * 255:.0f}/255" in choice["help"]
        assert f"PSNR ≥ {budget.min_psnr:g} dB" in choice["help"]


def test_quality_help_states_the_minimum_steps():
    field = next(f for f in options_schema()["fields"] if f["name"] == "quality")
    for choice in field["choices"]:
        assert f"{QUALITY[choice['value']].steps} steps" in choice["help"]


def test_coerce_gives_one_clear_error():
    from fixative.errors import BadOptions

    assert ProtectOptions.coerce(None) == ProtectOptions()
    assert ProtectOptions.coerce({"models": "taef2, taesd"}).models == ["taef2", "taesd"]
    with pytest.raises(BadOptions, match="intensity"):
        ProtectOptions.coerce({"intensity": "extreme"})
