"""The engine's HTTP API (FastAPI): routes, request guard (Host, Origin, token, body size), errors.

The guard is a plain ASGI middleware in front of everything, so no route can forget a check and
oversized bodies are refused before any parsing. Every error leaves as
``{"error": {"code", "message"}}``; tracebacks go to the log, never to the client.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fixative import __version__, options, service
from fixative.errors import BadOptions, FixativeError
from fixative.server import limits
from fixative.server.config import ServerConfig
from fixative.server.jobs import JobManager, JobOutput, QueueFull
from fixative.server.uploads import JobPayload, UploadSpool
from fixative.server.work import (
    IMAGE_FORMATS,
    REFERENCE_FORMATS,
    check_upload,
    run_protect_job,
)

log = logging.getLogger("fixative.server")

HEALTH_PATH = "/v1/health"
DRAIN_BYTES = 64 * 1024 * 1024
"""An over-limit body up to this size is read and discarded before the 413, so the client sees it."""
JobStateName = Literal["queued", "running", "done", "failed", "cancelled"]


# -- response schemas (they make /openapi.json precise for clients and schemathesis) ------------------
class ErrorBody(BaseModel):
    code: str = Field(description="stable snake_case code, e.g. bad_image, queue_full, lease_expired")
    message: str = Field(description="one sentence for people")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"]


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    kind: str
    available: bool


class Limits(BaseModel):
    max_pixels: int
    max_body_bytes: int
    max_queue: int
    lease_seconds: float
    result_ttl_s: float
    max_jobs: int
    max_connections: int
    header_timeout_s: float


class Info(BaseModel):
    version: str
    device: str
    models: list[ModelInfo]
    modes: list[str]
    intensities: list[str]
    qualities: list[str]
    robustness: list[str]
    styles: list[str]
    limits: Limits
    options_schema: dict[str, Any] = Field(description="SCHEMA: every protection option with its kind, "
                                           "label, help, default and choices (docs/engine-api.md)")


class JobCreated(BaseModel):
    id: str
    state: JobStateName
    queue_position: int | None = Field(description="1 = runs next; null once running")


class JobStatus(BaseModel):
    id: str
    state: JobStateName
    progress: float = Field(ge=0, le=1)
    eta_s: float | None = Field(description="seconds left, null when unknown")
    stage: str
    queue_position: int | None = Field(description="1 = runs next; null when not queued")
    error: ErrorBody | None


class CancelAnswer(BaseModel):
    id: str
    state: JobStateName


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "missing or wrong bearer token"},
    403: {"model": ErrorResponse, "description": "foreign Host or Origin"},
}
JOB_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 404: {"model": ErrorResponse, "description": "unknown or expired job id"},
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape; the message is made valid UTF-8 so an answer can never fail to encode."""
    return JSONResponse({"error": {"code": code, "message": limits.echo(message, 2000)}}, status_code=status,
                        headers=headers)


# -- the guard ---------------------------------------------------------------------------------------
class Activity:
    """When the last request came and how many are in flight (for --idle-exit)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.in_flight = 0
        self._lock = threading.Lock()

    def begin(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.last = time.monotonic()

    def end(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.last = time.monotonic()


class _BodyTooLarge(Exception):
    pass


class GuardMiddleware:
    """Host and Origin allow-lists (403), bearer token (401), body size (413), for every request."""

    def __init__(self, app: ASGIApp, config: ServerConfig, activity: Activity) -> None:
        self.app = app
        self.config = config
        self.activity = activity
        self.token = config.token.encode()
        self.allowed_hosts = config.allowed_hosts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.activity.begin()
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.activity.end()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            origin = headers.get("origin")
            if origin is not None and origin in self.config.allowed_origins:  # so the page can read why
                refusal.headers["Access-Control-Allow-Origin"] = origin
                refusal.headers["Vary"] = "Origin"
            await refusal(scope, receive, send)
            return
        limit = self.config.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, drain=int(declared) <= DRAIN_BYTES)
            return

        received = 0
        exceeded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            if not exceeded:  # once over the limit, the app's own answer is replaced by 413
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await self._too_large(scope, receive, send, drain=True)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> JSONResponse | None:
        if sum(1 for key, _ in scope["headers"] if key.lower() == b"host") > 1:
            return error_response(400, "bad_request", "The request has more than one Host header.")
        host = headers.get("host", "").lower()
        if host not in self.allowed_hosts:
            return error_response(403, "forbidden_host",
                                  f"Host {host or '(none)'!r} is not this engine's loopback address.")
        origin = headers.get("origin")
        if origin is not None and origin not in self.config.allowed_origins:
            return error_response(403, "forbidden_origin",
                                  f"Requests from origin {origin!r} are not allowed (see --allow-origin).")
        if scope["method"] == "OPTIONS" and origin is not None:
            return _preflight_refusal(headers)  # a CORS preflight from an allowed origin carries no token
        if scope["path"] == HEALTH_PATH:
            return None
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self.token):
            return error_response(401, "unauthorized",
                                  "Missing or wrong token: send 'Authorization: Bearer <token from engine.json>'.",
                                  headers={"WWW-Authenticate": "Bearer"})
        return None

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, drain: bool) -> None:
        """Answer 413. Unless the body is huge, read and discard it first: closing a socket with
        unread data makes TCP reset it, and a client still sending would lose the 413 answer."""
        drained = 0
        while drain and drained <= DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        response = error_response(413, "body_too_large",
                                  f"The request is larger than this engine's limit of "
                                  f"{self.config.max_body_bytes:,} bytes.", headers={"Connection": "close"})
        await response(scope, receive, send)


CORS_METHODS = ("GET", "POST", "DELETE")
CORS_HEADERS = ("authorization", "content-type")


def _preflight_refusal(headers: dict[str, str]) -> JSONResponse | None:
    """A preflight asking for a method or header the API never allows gets a JSON 400 here
    (Starlette's CORS middleware would answer text/plain)."""
    method = headers.get("access-control-request-method")
    if method is None:
        return None
    asked = [name.strip().lower() for name in headers.get("access-control-request-headers", "").split(",")
             if name.strip()]
    refused = [name for name in asked if name not in CORS_HEADERS and name not in (
        "accept", "accept-language", "content-language")]
    if method.upper() not in CORS_METHODS or refused:
        what = f"method {method}" if method.upper() not in CORS_METHODS else f"headers {', '.join(refused)}"
        return error_response(400, "cors_refused", f"Cross-origin {limits.echo(what, 100)} not allowed; "
                              f"methods {', '.join(CORS_METHODS)}, headers Authorization and Content-Type.")
    return None


# -- the application -----------------------------------------------------------------------------------
def create_app(config: ServerConfig, *, runner: Callable[..., JobOutput] | None = None,
               warmup: Callable[[], None] | None = None) -> FastAPI:
    """Build the engine app. ``runner``/``warmup`` replace the real protect() job (tests use fakes)."""
    if warmup is None and runner is None and config.preload:
        def warmup() -> None:
            service.warm_up()  # the default models on the auto device, as a job with default options

    manager = JobManager(runner or run_protect_job, max_queue=config.max_queue,
                         lease_seconds=config.lease_seconds, result_ttl=config.result_ttl,
                         fetched_grace=config.fetched_grace, warmup=warmup, max_jobs=config.max_jobs)
    spool = UploadSpool()
    activity = Activity()
    device_cache: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)
            spool.close()  # any upload file a job still held

    app = FastAPI(title="Fixative engine", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, redirect_slashes=False,
                  description="Local engine of Fixative; see docs/engine-api.md. "
                              "Every endpoint except /v1/health needs the bearer token from engine.json.")
    app.state.config = config
    app.state.manager = manager
    app.state.spool = spool
    app.state.activity = activity
    # Documents the bearer scheme in OpenAPI; GuardMiddleware has already checked the token.
    auth = [Depends(HTTPBearer(auto_error=False, description="token from the discovery file engine.json"))]

    @app.exception_handler(FixativeError)
    async def _fixative_error(_: Request, exc: FixativeError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QueueFull) else None
        return error_response(exc.http_status, exc.code, str(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "body_too_large"}
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        if exc.status_code == 404 and message == "Not Found":
            message = "No such endpoint; see /openapi.json."
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message,
                              dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "bad_request", _describe(jsonable_encoder(exc.errors())))

    @app.exception_handler(ClientDisconnect)
    async def _disconnected(_: Request, __: ClientDisconnect) -> JSONResponse:
        # The client went away (or was cut off for sending too slowly); nobody reads this answer.
        return error_response(400, "client_disconnected", "The client closed the connection mid-request.")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", f"The engine failed: {type(exc).__name__}.")

    @app.get(HEALTH_PATH, response_model=Health, tags=["engine"], responses={403: ERRORS[403]})
    async def health() -> dict[str, str]:
        """Liveness only (no token needed, nothing revealed)."""
        return {"status": "ok"}

    @app.get("/v1/info", dependencies=auth, response_model=Info, tags=["engine"], responses=ERRORS)
    def info() -> dict[str, Any]:
        """What this engine can do: models, styles, limits and options_schema (the plug-ins build their dialogs from it)."""
        if "device" not in device_cache:
            device_cache["device"] = service.device_name()
        return {
            "version": __version__,
            "device": device_cache["device"],
            "models": _available_models(),
            "modes": options.choice_values("mode"),
            "intensities": options.choice_values("intensity"),
            "qualities": options.choice_values("quality"),
            "robustness": options.choice_values("robustness"),
            "styles": _style_names(),
            "options_schema": options.options_schema(),
            "limits": {"max_pixels": config.max_pixels, "max_body_bytes": config.max_body_bytes,
                       "max_queue": config.max_queue, "lease_seconds": config.lease_seconds,
                       "result_ttl_s": config.result_ttl, "max_jobs": config.max_jobs,
                       "max_connections": config.max_connections, "header_timeout_s": config.header_timeout},
        }

    @app.post("/v1/jobs", dependencies=auth, status_code=202, response_model=JobCreated, tags=["jobs"], responses={
        **ERRORS,
        400: {"model": ErrorResponse, "description": "corrupt or unsupported image (bad_image)"},
        413: {"model": ErrorResponse, "description": "too_many_pixels or body_too_large"},
        422: {"model": ErrorResponse, "description": "bad options or form fields"},
        429: {"model": ErrorResponse, "description": "queue full; see Retry-After",
              "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    })
    @app.post("/v1/jobs/", dependencies=auth, status_code=202, include_in_schema=False)
    async def submit_job(
        image: Annotated[UploadFile, File(description="the artwork: PNG or TIFF, 8/16-bit, RGB(A)/L(A)")],
        options_json: Annotated[str | None, Form(alias="options",
                                                 description="JSON object with ProtectOptions fields")] = None,
        style_image: Annotated[UploadFile | None, File(description="optional style reference")] = None,
        anchor: Annotated[UploadFile | None, File(description="optional poison anchor image")] = None,
        credentials: Annotated[bool, Form(description="sign 'not for AI training' content credentials "
                                                      "(C2PA) into the result, for files to post")] = False,
    ) -> JSONResponse:
        """Queue one protection job; poll GET /v1/jobs/{id} to keep its lease."""
        protect_options = _parse_options(options_json, config)
        limits.check_style(protect_options.target_style, mode=protect_options.mode,
                           has_style_image=style_image is not None, has_pipeline=bool(config.pipeline))
        image_bytes = await image.read()
        style_bytes = await style_image.read() if style_image is not None else None
        anchor_bytes = await anchor.read() if anchor is not None else None
        payload = JobPayload(image=image_bytes, options=protect_options, max_pixels=config.max_pixels,
                             style_image=style_bytes, anchor=anchor_bytes, credentials=credentials)
        await run_in_threadpool(_check_payload, payload)
        del image_bytes, style_bytes, anchor_bytes
        await run_in_threadpool(payload.spill, spool)
        try:
            job = manager.submit(payload)
        except BaseException:
            payload.discard()
            raise
        status = manager.status(job.id, touch=False)
        return JSONResponse({"id": job.id, "state": status["state"],
                             "queue_position": status["queue_position"]}, status_code=202)

    @app.get("/v1/jobs/{job_id}", dependencies=auth, response_model=JobStatus, tags=["jobs"], responses=JOB_ERRORS)
    async def job_status(job_id: str) -> dict[str, Any]:
        """State, progress and queue position; every poll renews the job's lease."""
        return manager.status(job_id)

    @app.get("/v1/jobs/{job_id}/result", dependencies=auth, tags=["jobs"], responses={
        **JOB_ERRORS, 409: {"model": ErrorResponse, "description": "not done yet"},
        200: {"content": {"image/png": {}, "image/tiff": {}}, "description": "the protected image"}},
        response_class=Response)
    async def job_result(job_id: str) -> Response:
        """The protected image in the format, size, mode and bit depth that was sent."""
        output = manager.output(job_id, is_result=True)
        return Response(output.result, media_type=output.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{output.filename}"'})

    @app.get("/v1/jobs/{job_id}/report", dependencies=auth, tags=["jobs"], response_model=dict[str, Any], responses={
        **JOB_ERRORS, 409: {"model": ErrorResponse, "description": "not done yet"}})
    async def job_report(job_id: str) -> dict[str, Any]:
        """The run's statistics (ProtectStats): PSNR, SSIM, closing fractions, steps, seconds..."""
        return manager.output(job_id).report

    @app.get("/v1/jobs/{job_id}/preview", dependencies=auth, tags=["jobs"], responses={
        **JOB_ERRORS, 409: {"model": ErrorResponse, "description": "not done yet"},
        200: {"content": {"image/png": {}}, "description": "before | after | AI's-eye view"}},
        response_class=Response)
    async def job_preview(job_id: str) -> Response:
        """A small PNG strip: before | after | what the encoder sees."""
        output = manager.output(job_id)
        preview = await run_in_threadpool(output.wait_preview, 120.0)
        if preview is None:
            return error_response(404, "no_preview", "No preview could be made for this job.")
        return Response(preview, media_type="image/png")

    @app.delete("/v1/jobs/{job_id}", dependencies=auth, response_model=CancelAnswer, tags=["jobs"], responses=JOB_ERRORS)
    async def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (within one step), or forget a finished one."""
        job = manager.cancel(job_id)
        state = job.state
        if state == "running":
            state = await run_in_threadpool(manager.wait_finished, job_id, 2.0)
        return {"id": job_id, "state": state}

    @app.post("/v1/credentials", dependencies=auth, tags=["credentials"], response_class=Response, responses={
        **ERRORS,
        400: {"model": ErrorResponse, "description": "not a PNG, JPEG or WebP file (bad_image)"},
        413: {"model": ErrorResponse, "description": "too_many_pixels or body_too_large"},
        422: {"model": ErrorResponse, "description": "the credentials could not be signed (credentials_error)"},
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
              "description": "the same file with a signed C2PA manifest"}})
    async def sign_credentials(
        image: Annotated[UploadFile, File(description="a finished PNG, JPEG or WebP file to post")],
    ) -> Response:
        """Add signed 'not for AI training' content credentials with this engine's own identity."""
        from fixative.server.credentials import sign_upload

        signed, media_type = await run_in_threadpool(sign_upload, await image.read(), config.max_pixels)
        return Response(signed, media_type=media_type)

    guarded: ASGIApp = app
    if config.allowed_origins:
        from starlette.middleware.cors import CORSMiddleware

        guarded = CORSMiddleware(app, allow_origins=config.allowed_origins,
                                 allow_methods=list(CORS_METHODS), allow_headers=["Authorization", "Content-Type"])
    app.state.guarded = GuardMiddleware(guarded, config, activity)
    return app


def asgi_app(app: FastAPI) -> ASGIApp:
    """The app as served: behind the guard (create_app keeps the bare app for state access)."""
    return app.state.guarded


def _check_payload(payload: JobPayload) -> None:
    width, height = check_upload(payload.image, field="image", max_pixels=payload.max_pixels, formats=IMAGE_FORMATS)
    limits.check_protectable_size(width, height)
    for name, data in (("style_image", payload.style_image), ("anchor", payload.anchor)):
        if data is not None:
            check_upload(data, field=name, max_pixels=payload.max_pixels, formats=REFERENCE_FORMATS)


def _parse_options(text: str | None, config: ServerConfig) -> options.ProtectOptions:
    """JSON text → ProtectOptions; anything wrong is a 422 naming the field."""
    values: Any = {}
    if text is not None and text.strip():
        values = limits.parse_options_text(text)
    if not isinstance(values, dict):
        raise BadOptions("options must be a JSON object with ProtectOptions fields.")
    if "pipeline" in values:
        raise BadOptions("pipeline cannot be set per job (it names a folder or download); "
                         "start the engine with 'fixative serve --pipeline ...' instead.")
    if config.pipeline:
        values["pipeline"] = config.pipeline
    if "models" in values:  # before the options' own check, whose message offers vae:<path>
        limits.check_models(limits.model_names(values["models"]), config.allowed_models)
    try:
        parsed = options.ProtectOptions.model_validate(values)
    except ValidationError as exc:
        raise BadOptions(f"Invalid options: {_describe(exc.errors(include_url=False))}") from exc
    return parsed


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(item) for item in error.get("loc", ()) if item != "body")
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg")))
    return "; ".join(parts) or "Invalid request."


def _available_models() -> list[dict[str, Any]]:
    try:
        from fixative.models.registry import available_models

        return [dict(model) for model in available_models()]
    except Exception:
        log.warning("could not list models", exc_info=True)
        return []


def _style_names() -> list[str]:
    try:
        from fixative.targets import builtin_style_names

        return list(builtin_style_names())
    except Exception:
        log.warning("could not list styles", exc_info=True)
        return []
