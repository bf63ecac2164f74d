"""Image encoders that Fixative attacks. Add a model = add a spec in ``registry`` (+ a builder file)."""

from fixative.models.base import ImageEncoder
from fixative.models.registry import available_models, check_model_name, load_encoder

__all__ = ["ImageEncoder", "available_models", "check_model_name", "load_encoder"]
