"""Errors with a stable machine code and one clear sentence, shown as-is by the CLI, API and plugins."""

from __future__ import annotations


class FixativeError(Exception):
    """Base class. ``code`` is stable (used in the API's error JSON); ``str()`` is for people."""

    code = "fixative_error"
    http_status = 400


class BadImage(FixativeError):
    code = "bad_image"


class TooManyPixels(FixativeError):
    code = "too_many_pixels"
    http_status = 413


class BadOptions(FixativeError):
    code = "bad_options"
    http_status = 422


class UnknownModel(BadOptions):
    code = "unknown_model"


class UnknownStyle(BadOptions):
    code = "unknown_style"


class MissingWeights(FixativeError):
    code = "missing_weights"
    http_status = 503


class DownloadFailed(MissingWeights):
    code = "download_failed"


class Cancelled(FixativeError):
    code = "cancelled"
    http_status = 409


class OutputError(FixativeError):
    code = "output_error"


class CredentialsError(FixativeError):
    """Content credentials (C2PA) could not be written, read or set up; the message says why."""

    code = "credentials_error"
    http_status = 422
