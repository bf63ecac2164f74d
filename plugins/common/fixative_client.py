# -*- coding: utf-8 -*-
"""Talks to the local Fixative engine for the Krita and GIMP plugins.

Standard library only and Python 2.7 compatible, because GIMP 2.10 ships Python 2.7 and editors
never have pip packages. The engine contract is docs/engine-api.md; the folder rules are
engine/fixative/locations.py, shared with the engine and the installer.
"""

from __future__ import absolute_import, division, print_function, unicode_literals

import binascii
import errno
import json
import os
import subprocess
import sys
import time
import types

try:  # Python 3
    from urllib.error import HTTPError, URLError
    from urllib.request import ProxyHandler, Request, build_opener
except ImportError:  # pragma: no cover - Python 2.7 (GIMP 2.10)
    from urllib2 import HTTPError, ProxyHandler, Request, URLError, build_opener  # novermin

try:  # Python 3
    from http.client import HTTPException
except ImportError:  # pragma: no cover - Python 2.7
    from httplib import HTTPException  # novermin

__all__ = [
    "FixativeClientError", "PluginError", "EngineNotInstalled", "EngineUnreachable", "JobFailed", "Cancelled",
    "FixativeClient", "JobOutcome", "state_dir", "config_dir", "discovery_file", "plugin_config_file",
]

TERMINAL_STATES = ("done", "failed", "cancelled")
_TEXT = type("")


class FixativeClientError(Exception):
    """Base class; ``str()`` is one sentence the plugin can show to the artist as-is."""

    def __init__(self, message):
        Exception.__init__(self, message)
        self.message = message

    def __str__(self):
        return self.message


class PluginError(FixativeClientError):
    """A problem with the layer or the dialog's values that the artist can act on."""


class EngineNotInstalled(FixativeClientError):
    """No plugin.json, or the engine command it names is missing: the installer has to run."""


class EngineUnreachable(FixativeClientError):
    """The engine could not be reached, or did not come up within the start timeout."""


class JobFailed(FixativeClientError):
    """The engine refused or failed a job; ``code`` and ``message`` come from its error JSON."""

    def __init__(self, message, code="job_failed", http_status=None):
        FixativeClientError.__init__(self, message)
        self.code = code
        self.http_status = http_status


class Cancelled(FixativeClientError):
    """The job was cancelled (by the artist, or by the engine when its lease ran out)."""


# ---------------------------------------------------------------------------------------------
# Folders: the rules live in one file shared with the engine and the installer
# (engine/fixative/locations.py); the installer copies it beside this one as fixative_locations.py.


def _load_folder_rules():
    """The shared folder rules: the copy beside this file (installed plug-ins), else the engine's
    file in a source checkout (tests, running from plugins/common)."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = (os.path.join(here, "fixative_locations.py"),
                  os.path.join(here, os.pardir, os.pardir, "engine", "fixative", "locations.py"))
    for path in candidates:
        if os.path.isfile(path):
            module = types.ModuleType(str("fixative_locations"))
            module.__file__ = path
            with open(path, "rb") as handle:
                code = compile(handle.read(), path, "exec", 0, True)
            exec(code, module.__dict__)
            return module
    raise ImportError("fixative_locations.py is missing next to %s; reinstall the plug-in with "
                      "the Fixative installer." % here)


_locations = _load_folder_rules()


def state_dir():
    """Where the engine writes its discovery file ``engine.json``."""
    return _locations.state_dir()


def config_dir():
    """Where the installer writes ``plugin.json`` (the command that starts the engine)."""
    return _locations.config_dir()


def discovery_file():
    return _locations.discovery_file()


def plugin_config_file():
    return _locations.plugin_config_file()


def read_json_file(path):
    """The file's JSON object, or None when it is absent, half-written or not an object."""
    try:
        with open(path, "rb") as handle:
            value = json.loads(handle.read().decode("utf-8"))
    except (IOError, OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _find_executable(name):
    """Like shutil.which, which Python 2.7 lacks."""
    if os.path.dirname(name):
        return name if os.path.isfile(name) else None
    extensions = [""]
    if sys.platform.startswith("win"):
        extensions += os.environ.get("PATHEXT", ".EXE;.BAT;.CMD").lower().split(";")
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        for extension in extensions:
            candidate = os.path.join(folder, name + extension)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def _sniff_content_type(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/tiff": "tif", "image/webp": "webp"}


def _to_bytes(value):
    return value.encode("utf-8") if isinstance(value, _TEXT) else value


def _native_str(value):
    """Python 2's httplib joins URL and headers with the body: they must be byte strings there."""
    if sys.version_info[0] < 3 and isinstance(value, _TEXT):
        return value.encode("utf-8")
    return value


def build_multipart(fields, boundary=None):
    """A multipart/form-data body built by hand (no requests library in editors).

    ``fields`` is a list of ``(name, value)`` for text or ``(name, (filename, bytes, ctype))``
    for files. Returns ``(content_type_header, body_bytes)``.
    """
    boundary = boundary or "fixative-" + binascii.hexlify(os.urandom(16)).decode("ascii")
    parts = []
    for name, value in fields:
        parts.append(b"--" + _to_bytes(boundary) + b"\r\n")
        if isinstance(value, tuple):
            filename, data, content_type = value
            parts.append(_to_bytes('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                                   % (name, filename.replace('"', "_"))))
            parts.append(_to_bytes("Content-Type: %s\r\n\r\n" % content_type))
            parts.append(_to_bytes(data))
        else:
            parts.append(_to_bytes('Content-Disposition: form-data; name="%s"\r\n' % name))
            parts.append(b"Content-Type: text/plain; charset=utf-8\r\n\r\n")
            parts.append(_to_bytes(value))
        parts.append(b"\r\n")
    parts.append(b"--" + _to_bytes(boundary) + b"--\r\n")
    return "multipart/form-data; boundary=%s" % boundary, b"".join(parts)


def _error_from_body(body, status):
    """(code, message) from the engine's ``{"error": {...}}`` JSON, or a generic pair."""
    try:
        error = json.loads(body.decode("utf-8"))["error"]
        return _TEXT(error.get("code") or "http_%d" % status), _TEXT(error["message"])
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return "http_%d" % status, "The Fixative engine answered HTTP %d." % status


class FixativeClient(object):
    """One engine connection: discover (or start) the engine, then submit, poll and fetch jobs.

    Every method blocks; GUI plugins call them from a worker thread or with short timeouts.
    """

    def __init__(self, state_dir=None, config_dir=None, start_timeout=60.0, request_timeout=30.0):
        self.state_dir = state_dir
        self.config_dir = config_dir
        self.start_timeout = float(start_timeout)
        self.request_timeout = float(request_timeout)
        self.url = None
        self.token = None
        self.engine_pid = None
        self.started_process = None
        self.last_job_id = None
        # Loopback only: a system proxy must never see the token or the artwork.
        self._opener = build_opener(ProxyHandler({}))

    # -- locations --------------------------------------------------------------------------
    def _discovery_path(self):
        if self.state_dir is None:
            # Sandboxed editors (Flatpak) see another state folder than the host's engine: the
            # installer then records the host's discovery file in plugin.json.
            config = read_json_file(self._plugin_config_path()) or {}
            if config.get("discovery_file"):
                return config["discovery_file"]
        return os.path.join(self.state_dir or state_dir(), "engine.json")

    def _plugin_config_path(self):
        return os.path.join(self.config_dir or config_dir(), "plugin.json")

    # -- HTTP ---------------------------------------------------------------------------------
    def _request(self, method, path, body=None, headers=None, timeout=None, auth=True):
        """Send one request; returns ``(status, headers, body)`` or raises a client error."""
        if not self.url:
            raise EngineUnreachable("Not connected to the Fixative engine; call connect() first.")
        request = Request(_native_str(self.url.rstrip("/") + path), data=body)
        request.get_method = lambda: _native_str(method)
        for key, value in (headers or {}).items():
            request.add_header(_native_str(key), _native_str(value))
        if auth and self.token:
            request.add_header(_native_str("Authorization"), _native_str("Bearer %s" % self.token))
        try:
            response = self._opener.open(request, timeout=timeout or self.request_timeout)
            try:
                return response.getcode(), response.info(), response.read()
            finally:
                response.close()
        except HTTPError as exc:
            data = exc.read() if hasattr(exc, "read") else b""
            code, message = _error_from_body(data or b"", exc.code)
            if exc.code == 401:
                raise EngineUnreachable("The Fixative engine refused our key (it may have restarted); "
                                        "try again.")
            if code == "cancelled":
                raise Cancelled(message)
            raise JobFailed(message, code=code, http_status=exc.code)
        except (URLError, IOError, OSError, HTTPException) as exc:
            raise EngineUnreachable("Could not reach the Fixative engine at %s (%s)."
                                    % (self.url, getattr(exc, "reason", exc)))

    def _json(self, method, path, **kwargs):
        status, _headers, body = self._request(method, path, **kwargs)
        try:
            return json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise EngineUnreachable("The Fixative engine sent an answer that is not JSON (HTTP %d)."
                                    % status)

    def _healthy(self, url, timeout=2.0):
        request = Request(url.rstrip("/") + "/v1/health")
        try:
            response = self._opener.open(request, timeout=timeout)
            try:
                return json.loads(response.read().decode("utf-8")).get("status") == "ok"
            finally:
                response.close()
        except (HTTPError, URLError, IOError, OSError, ValueError, AttributeError, HTTPException):
            return False

    # -- discovery and start ------------------------------------------------------------------
    def discovery_folder(self):
        """The folder holding engine.json (and the engine's cached options-schema.json)."""
        return os.path.dirname(self._discovery_path())

    def find_running(self):
        """Connect to an engine that is already running, never start one; True when found."""
        return self._try_discovered()

    def _try_discovered(self):
        found = read_json_file(self._discovery_path())
        if not found or not found.get("url") or not found.get("token"):
            return False
        if not self._healthy(found["url"]):
            return False
        self.url, self.token, self.engine_pid = found["url"], found["token"], found.get("pid")
        return True

    def engine_command(self):
        """The command from plugin.json, checked; raises EngineNotInstalled with what to do."""
        path = self._plugin_config_path()
        config = read_json_file(path)
        if config is None:
            raise EngineNotInstalled("The Fixative engine is not installed (no %s). Run the Fixative "
                                     "installer (python installer/install.py), then try again." % path)
        command = config.get("engine_command")
        if (not isinstance(command, list) or not command
                or not all(isinstance(part, (_TEXT, str)) for part in command)):
            raise EngineNotInstalled("%s has no valid engine_command. Run the Fixative installer "
                                     "again." % path)
        if _find_executable(command[0]) is None:
            raise EngineNotInstalled("The Fixative engine program %s is missing. Run the Fixative "
                                     "installer again." % command[0])
        return list(command)

    def _start_engine(self, command):
        """Run the engine detached, so it outlives the editor's plug-in process."""
        folder = self.state_dir or state_dir()
        try:
            os.makedirs(folder)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise EngineUnreachable("Cannot create %s: %s" % (folder, exc))
        log_path = os.path.join(folder, "engine-start.log")
        log = open(log_path, "ab")
        kwargs = {"stdin": open(os.devnull, "rb"), "stdout": log, "stderr": subprocess.STDOUT,
                  "close_fds": True}
        if sys.platform.startswith("win"):
            detached, new_group, no_window = 0x00000008, 0x00000200, 0x08000000
            kwargs["creationflags"] = detached | new_group | no_window
            kwargs["close_fds"] = sys.version_info[0] >= 3
        elif sys.version_info[0] >= 3:
            kwargs["start_new_session"] = True
        else:  # pragma: no cover - Python 2.7
            kwargs["preexec_fn"] = os.setsid
        try:
            self.started_process = subprocess.Popen(command, **kwargs)
        except (OSError, ValueError) as exc:
            raise EngineNotInstalled("Could not run the Fixative engine (%s): %s. Run the Fixative "
                                     "installer again." % (command[0], exc))
        finally:
            log.close()
            kwargs["stdin"].close()
        return log_path

    def connect(self, start=True, on_status=None):
        """Find a live engine (or start one) and return its /v1/info."""
        def say(text):
            if on_status is not None:
                on_status(text)

        say("looking for the engine…")
        if not self._try_discovered():
            if not start:
                raise EngineUnreachable("The Fixative engine is not running.")
            command = self.engine_command()
            say("starting engine…")
            log_path = self._start_engine(command)
            deadline = time.time() + self.start_timeout
            while True:
                if self._try_discovered():
                    break
                process = self.started_process
                if process is not None and process.poll() is not None and not self._try_discovered():
                    raise EngineUnreachable("The Fixative engine stopped while starting (exit code %s); "
                                            "see %s." % (process.returncode, log_path))
                if time.time() > deadline:
                    raise EngineUnreachable("The Fixative engine did not start within %d s; see %s."
                                            % (self.start_timeout, log_path))
                time.sleep(0.25)
        say("engine connected")
        return self.info()

    # -- API ----------------------------------------------------------------------------------
    def info(self):
        return self._json("GET", "/v1/info")

    def submit(self, image_bytes, options, content_type="image/png", filename="layer.png",
               style_image=None, anchor=None, credentials=False):
        """Queue a job; returns its id. ``style_image``/``anchor`` are encoded image bytes.
        ``credentials``: the result is a file to post, so the engine signs C2PA 'not for AI
        training' credentials into it (leave off for layers: they are re-imported as pixels)."""
        fields = [("image", (filename, image_bytes, content_type)),
                  ("options", json.dumps(dict(options or {})))]
        if credentials:
            fields.append(("credentials", "true"))
        for name, data in (("style_image", style_image), ("anchor", anchor)):
            if data is not None:
                kind = _sniff_content_type(data)
                fields.append((name, ("%s.%s" % (name, _EXTENSIONS.get(kind, "bin")), data, kind)))
        content_type_header, body = build_multipart(fields)
        answer = self._json("POST", "/v1/jobs", body=body,
                            headers={"Content-Type": content_type_header})
        if "id" not in answer:
            raise JobFailed("The Fixative engine did not return a job id.", code="bad_answer")
        return answer["id"]

    def status(self, job_id):
        return self._json("GET", "/v1/jobs/%s" % job_id)

    def cancel(self, job_id):
        try:
            return self._json("DELETE", "/v1/jobs/%s" % job_id)
        except (JobFailed, Cancelled):  # already finished or forgotten: nothing left to cancel
            return {"id": job_id, "state": "cancelled"}

    def wait(self, job_id, on_progress=None, should_cancel=None, poll_min=0.25, poll_max=2.0):
        """Poll until the job ends; polls also renew the job's lease on the engine."""
        interval = poll_min
        last_seen = None
        while True:
            if should_cancel is not None and should_cancel():
                self.cancel(job_id)
                raise Cancelled("Protection cancelled.")
            status = self.status(job_id)
            state = status.get("state")
            seen = (state, status.get("progress"), status.get("stage"))
            if on_progress is not None and seen != last_seen:
                on_progress(float(status.get("progress") or 0.0), status.get("stage") or state or "",
                            status.get("eta_s"))
            if state == "done":
                return status
            if state == "failed":
                error = status.get("error") or {}
                raise JobFailed(error.get("message") or "The protection failed.",
                                code=error.get("code") or "job_failed")
            if state == "cancelled":
                raise Cancelled("The engine cancelled the job.")
            interval = poll_min if seen != last_seen else min(poll_max, interval * 1.5)
            last_seen = seen
            deadline = time.time() + interval
            while time.time() < deadline:  # sleep in slices so Cancel acts quickly
                if should_cancel is not None and should_cancel():
                    break
                time.sleep(min(0.05, max(0.0, deadline - time.time())))

    def result(self, job_id):
        return self._request("GET", "/v1/jobs/%s/result" % job_id)[2]

    def preview(self, job_id):
        return self._request("GET", "/v1/jobs/%s/preview" % job_id)[2]

    def report(self, job_id):
        return self._json("GET", "/v1/jobs/%s/report" % job_id)

    def add_credentials(self, image_bytes):
        """The finished PNG/JPEG/WebP file back with signed C2PA 'not for AI training' credentials.

        The engine signs with its user's own identity (``fixative identity``); no key travels."""
        kind = _sniff_content_type(image_bytes)
        content_type, body = build_multipart(
            [("image", ("export.%s" % _EXTENSIONS.get(kind, "bin"), image_bytes, kind))])
        return self._request("POST", "/v1/credentials", body=body,
                             headers={"Content-Type": content_type})[2]

    def protect(self, image_bytes, options, on_progress=None, should_cancel=None,
                content_type="image/png", style_image=None, anchor=None, fetch_preview=False):
        """Submit, wait, fetch: the one protect path of every plug-in; returns a JobOutcome.

        Blocks until the job ends, so GUI plug-ins call it from a worker thread (Krita) or
        while the editor shows its own progress (GIMP). ``should_cancel`` is polled often.
        """
        extension = _EXTENSIONS.get(content_type, "png")
        job_id = self.submit(image_bytes, options, content_type=content_type,
                             filename="layer.%s" % extension, style_image=style_image, anchor=anchor)
        self.last_job_id = job_id
        self.wait(job_id, on_progress=on_progress, should_cancel=should_cancel)
        # The report and preview stay fetchable for a minute after the result: fetch them first.
        try:
            report = self.report(job_id)
        except JobFailed:
            report = {}
        preview = None
        if fetch_preview:
            try:
                preview = self.preview(job_id)
            except JobFailed:
                preview = None
        return JobOutcome(self.result(job_id), report, preview)

    def protect_bytes(self, image_bytes, options, on_progress=None, should_cancel=None,
                      content_type="image/png", style_image=None, anchor=None):
        """``protect`` for callers that want ``(result_bytes, report_dict)``."""
        outcome = self.protect(image_bytes, options, on_progress=on_progress,
                               should_cancel=should_cancel, content_type=content_type,
                               style_image=style_image, anchor=anchor)
        return outcome.result, outcome.report


class JobOutcome(object):
    """What a finished job hands back: the encoded image, its report, optionally a preview."""

    def __init__(self, result, report, preview=None):
        self.result = result
        self.report = report if isinstance(report, dict) else {}
        self.preview = preview
