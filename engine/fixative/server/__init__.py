"""The local engine process (`fixative serve`): HTTP API, job queue and discovery file.

See docs/engine-api.md for the contract the plug-ins rely on.
"""

from fixative.server.config import ServerConfig

__all__ = ["ServerConfig"]
