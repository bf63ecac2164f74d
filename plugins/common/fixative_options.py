# -*- coding: utf-8 -*-
"""The engine's option schema as the plug-ins use it: where it comes from and what it allows.

The engine describes every protect option once (docs/engine-api.md, "options_schema"); the
plug-ins build their dialogs from that description, so a new engine option appears in GIMP 3,
GIMP 2.10 and Krita without touching them. The schema is read from, in this order:
the running engine's ``/v1/info``, the ``options-schema.json`` the engine leaves beside
``engine.json``, and the copy shipped beside this file (for an engine that never ran yet).

Standard library only and Python 2.7 compatible, like fixative_client.py.
"""

from __future__ import absolute_import, division, print_function, unicode_literals

import os

from fixative_client import FixativeClient, FixativeClientError, PluginError, read_json_file

__all__ = [
    "SCHEMA_VERSION", "CACHE_FILE", "FALLBACK_FILE", "OptionsError", "is_schema", "fallback_schema",
    "cached_schema", "load_schema", "dialog_fields", "script_argument_fields", "field_named",
    "label_of", "choice_values",
    "choice_labels", "choice_from_index", "index_of_choice", "field_enabled", "build_options",
]

SCHEMA_VERSION = 1
CACHE_FILE = "options-schema.json"
FALLBACK_FILE = "fixative_options_fallback.json"
KINDS = ("choice", "text", "integer", "boolean", "list")
_HERE = os.path.dirname(os.path.abspath(__file__))
_TEXT = type("")
try:  # Python 2.7 has two string types
    _STRINGS = (str, unicode)  # noqa: F821  # novermin
except NameError:
    _STRINGS = (str,)


class OptionsError(PluginError):
    """An option value the schema does not allow, or no usable schema; the text says which."""


def _is_field(field):
    if not isinstance(field, dict) or not isinstance(field.get("name"), _STRINGS):
        return False
    if field.get("kind") not in KINDS:
        return False
    if field["kind"] == "choice":
        choices = field.get("choices")
        return (isinstance(choices, list) and bool(choices)
                and all(isinstance(choice, dict) and "value" in choice for choice in choices))
    return True


def is_schema(schema):
    """True for a schema of the version this plug-in understands, with well-formed fields."""
    return (isinstance(schema, dict) and schema.get("version") == SCHEMA_VERSION
            and isinstance(schema.get("fields"), list)
            and all(_is_field(field) for field in schema["fields"]))


def _read_schema(path):
    schema = read_json_file(path)
    return schema if is_schema(schema) else None


def fallback_schema():
    """The schema shipped with the plug-in (what the engine published when it was released)."""
    schema = _read_schema(os.path.join(_HERE, FALLBACK_FILE))
    if schema is None:
        raise OptionsError("The Fixative plug-in is incomplete: %s is missing or damaged beside "
                           "fixative_options.py. Run the Fixative installer again." % FALLBACK_FILE)
    return schema


def cached_schema(client=None):
    """The schema the engine wrote beside engine.json when it last started, or None."""
    client = client or FixativeClient()
    return _read_schema(os.path.join(client.discovery_folder(), CACHE_FILE))


def load_schema(client=None, info=None, ask_engine=True):
    """The best schema available now: ``info``'s, a running engine's, the cached, the shipped one.

    ``info`` is a ``/v1/info`` answer the caller already has. With ``ask_engine`` an engine that
    is already running is asked (one quick request); none is ever started just for this.
    """
    if info is not None and is_schema(info.get("options_schema")):
        return info["options_schema"]
    client = client or FixativeClient(request_timeout=5.0)
    if ask_engine and info is None:
        try:
            if client.find_running():
                schema = client.info().get("options_schema")
                if is_schema(schema):
                    return schema
        except FixativeClientError:
            pass
    return cached_schema(client) or fallback_schema()


# -- fields -----------------------------------------------------------------------------------

def dialog_fields(schema):
    """The fields the dialogs show, in the schema's order."""
    return [field for field in schema["fields"] if field.get("dialog")]


# GIMP scripts pass these positionally, in this order, before new-layer: they stay first.
SCRIPT_ARGUMENT_ORDER = ("mode", "intensity", "quality", "robustness", "target_style", "concept",
                         "target_concept")


def script_argument_fields(schema):
    """``(leading, extra)`` dialog fields for a GIMP procedure: the historical seven in their
    order (scripts rely on it), then every other dialog field in the schema's order."""
    fields = dialog_fields(schema)
    leading = [field for name in SCRIPT_ARGUMENT_ORDER for field in fields if field["name"] == name]
    return leading, [field for field in fields if field not in leading]


def field_named(schema, name):
    for field in schema["fields"]:
        if field["name"] == name:
            return field
    raise OptionsError("The Fixative engine has no option named %r." % (name,))


def label_of(field):
    return field.get("label") or field["name"].replace("_", " ").capitalize()


def choice_values(field):
    return [choice["value"] for choice in field["choices"]]


def choice_labels(field):
    return [choice.get("label") or _TEXT(choice["value"]) for choice in field["choices"]]


def choice_from_index(field, index):
    """The value of the index-th choice (GIMP 2 passes indices); OptionsError when out of range."""
    values = choice_values(field)
    try:
        index = int(index)
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < len(values):
        raise OptionsError("%s must be one of %s (an index from 0 to %d), not %r."
                           % (label_of(field), ", ".join(_TEXT(value) for value in values),
                              len(values) - 1, index))
    return values[index]


def index_of_choice(field, value):
    """The index of ``value`` among the choices, or 0 (the first) when it is not one."""
    values = choice_values(field)
    return values.index(value) if value in values else 0


def field_enabled(field, values):
    """Whether the field applies given the other chosen values (its ``enabled_when``)."""
    for other, allowed in (field.get("enabled_when") or {}).items():
        if values.get(other) not in allowed:
            return False
    return True


# -- values -> job options ----------------------------------------------------------------------

def _clean(field, value):
    """The value as the engine wants it, None to leave the option to the engine's default."""
    kind, label = field["kind"], label_of(field)
    if kind == "choice":
        if value not in choice_values(field):
            raise OptionsError("%s must be one of %s, not %r."
                               % (label, ", ".join(_TEXT(item) for item in choice_values(field)),
                                  value))
        return value
    if kind == "text":
        text = (value or "").strip() if isinstance(value, _STRINGS) or value is None else None
        if text is None:
            raise OptionsError("%s must be text, not %r." % (label, value))
        default = field.get("default")
        return text or (default if isinstance(default, _STRINGS) and default else None)
    if kind == "integer":
        if value is None or (isinstance(value, _STRINGS) and not value.strip()):
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise OptionsError("%s must be a whole number, not %r." % (label, value))
        low, high = field.get("minimum"), field.get("maximum")
        if (low is not None and number < low) or (high is not None and number > high):
            raise OptionsError("%s must be between %s and %s, not %d."
                               % (label, "-" if low is None else low, "-" if high is None else high,
                                  number))
        return number
    if kind == "boolean":
        return bool(value)
    items = value.split(",") if isinstance(value, _STRINGS) else list(value or [])
    items = [_TEXT(item).strip() for item in items if _TEXT(item).strip()]
    return items or None


def build_options(schema, values):
    """The job's options from ``{field name: value}``, checked against the schema.

    Fields missing from ``values``, empty texts without a default, and fields whose
    ``enabled_when`` does not hold are left out (the engine then uses its default). A value
    the schema does not allow raises OptionsError naming the option and what it accepts.
    """
    options = {}
    for field in schema["fields"]:
        name = field["name"]
        if name not in values:
            continue
        value = _clean(field, values[name])
        if value is not None:
            options[name] = value
    chosen = dict((field["name"], field.get("default")) for field in schema["fields"])
    chosen.update(options)
    return dict((name, value) for name, value in options.items()
                if field_enabled(field_named(schema, name), chosen))
