"""The HTTP server: FastAPI app with /health, /metadata, /predict, /embed and /metrics.

One process, one model. Requests are validated field by field (422 naming the field), bodies
over the limit get 413, predictions past the timeout 504, and any unexpected failure a JSON
500 without a traceback. Inference runs in one worker thread, fed by the micro-batcher.
"""
from __future__ import annotations

import asyncio
import gc
import hmac
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from .. import __version__
from ..errors import ModalfuseError
from .audit import AuditLog, AuditMiddleware
from .batcher import MicroBatcher
from .bundle import BundleError, load_bundle
from ..errors import RequestError
from .engine import Engine
from .metrics import Metrics


@dataclass
class ServeSettings:
    max_batch: int = 64
    max_wait_ms: float = 5.0
    timeout_s: float = 10.0
    max_body_mb: float = 5.0
    api_key: Optional[str] = None
    threads: Optional[int] = 1
    audit: Optional[AuditLog] = None  # one line per request (audit.py)


#: image/audio bodies above this size are decoded in a worker thread; smaller ones on the event
#: loop, where a thread hop would cost more than the decoding (a 1 s WAV + a small PNG: ~0.3 ms)
OFFLOAD_BYTES = 256 * 1024


class BodyTooLarge(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        self.status, self.error, self.message, self.extra = status, error, message, extra
        super().__init__(message)


# ----------------------------------------------------------------------------- OpenAPI models
class PredictRequest(BaseModel):
    """Records to score; a single record object (without ``records``) is accepted too."""

    records: list[dict[str, Any]] = Field(..., description="One object per record: modality name → value. "
                                          "Vectors: lists of numbers; text: strings; tabular: objects of column values; "
                                          "images/audio: base64 file bytes. Omit a modality (or send null) when it is missing.")


class PredictResult(BaseModel):
    prediction: Union[str, int, float, bool, None] = None
    probabilities: Optional[dict[str, float]] = None
    uncertainty: Optional[dict[str, float]] = None
    modalities_used: list[str] = []
    weights: Optional[dict[str, float]] = None


class PredictResponse(BaseModel):
    results: list[PredictResult]


class EmbedResult(BaseModel):
    modalities: dict[str, Optional[list[float]]]
    fused: list[float]
    modalities_used: list[str]


class EmbedResponse(BaseModel):
    results: list[EmbedResult]


class ErrorResponse(BaseModel):
    error: str
    message: str
    field: Optional[str] = None
    expected: Optional[str] = None


class HealthResponse(BaseModel):
    status: str
    modalities: list[str]
    version: str


ERRORS = {401: {"model": ErrorResponse, "description": "missing or invalid API key"},
          413: {"model": ErrorResponse, "description": "request body over the size limit"},
          422: {"model": ErrorResponse, "description": "invalid field (named in `field`)"},
          504: {"model": ErrorResponse, "description": "prediction took longer than the timeout"}}
BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")},
    "multipart/form-data": {"schema": {"type": "object", "description": "one record: a form field or file per modality "
                                       "(image/audio as file uploads; vectors and tabular objects as JSON text)",
                                       "additionalProperties": True}}}}}


def _error(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    body = {"error": error, "message": message, **{k: v for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status)


class GuardMiddleware:
    """Pure ASGI: body-size limit (413) and per-request metrics (endpoint, status, latency)."""

    def __init__(self, app, limit_bytes: int, metrics: Metrics) -> None:
        self.app, self.limit, self.metrics = app, limit_bytes, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}
        endpoint = scope.get("path", "")

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None:
                try:
                    too_big = int(length) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    resp = _error(413, "payload_too_large", f"request body is {int(length)} bytes; the limit is {self.limit} bytes")
                    return await resp(scope, receive, send_wrapper)
            seen = {"n": 0}

            async def receive_wrapper():
                message = await receive()
                if message["type"] == "http.request":
                    seen["n"] += len(message.get("body", b""))
                    if seen["n"] > self.limit:
                        raise BodyTooLarge()
                return message

            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            known = endpoint if endpoint in ("/health", "/metadata", "/predict", "/embed", "/metrics") else "other"
            self.metrics.request(known, status["code"], time.perf_counter() - start)


def create_app(source: Any, settings: Optional[ServeSettings] = None, card: Optional[dict] = None) -> FastAPI:
    """An app serving ``source``: a bundle path, a loaded Bundle or a fitted MultimodalModel."""
    settings = settings or ServeSettings()
    if isinstance(source, (str, Path)):
        bundle = load_bundle(source)
        model, card = bundle.model, bundle.card
    elif hasattr(source, "model") and hasattr(source, "card"):
        model, card = source.model, source.card
    else:
        model = source
    engine = Engine(model)
    members = getattr(model, "members", None) or [engine.net]
    bad = [n for net in members for n, p in net.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise BundleError(f"the model's parameters hold NaN or infinite values ({bad[:3]}); refusing to serve it")

    def set_threads() -> None:  # run by the inference thread too: OpenMP keeps the thread count per thread
        if settings.threads:
            torch.set_num_threads(settings.threads)

    set_threads()
    metrics = Metrics()
    executor = ThreadPoolExecutor(1, thread_name_prefix="modalfuse-infer", initializer=set_threads)
    batcher = MicroBatcher(lambda enc: engine.predict(enc), settings.max_batch, settings.max_wait_ms, executor, metrics.batch)
    heavy = any(p.uploads for p in engine.preprocessors.values())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        # torch, the model and the web stack leave ~500k long-lived objects: a full collection of
        # them takes ~250 ms, which would stall every in-flight request; freeze them out of the GC
        gc.collect()
        gc.freeze()
        yield
        await batcher.stop()
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="modalfuse model server", version=__version__, lifespan=lifespan,
                  description="Predictions and embeddings of one modalfuse model; any modality may be omitted.")
    app.state.engine, app.state.batcher, app.state.metrics, app.state.settings = engine, batcher, metrics, settings
    bearer = HTTPBearer(auto_error=False, description="API key as a bearer token (when the server was started with one)")

    async def authorize(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if settings.api_key is None:
            return
        token = credentials.credentials if credentials is not None and credentials.scheme.lower() == "bearer" else ""
        if not token or not hmac.compare_digest(token.encode(), settings.api_key.encode()):
            raise ApiError(401, "unauthorized", "missing or invalid API key (send 'Authorization: Bearer <key>')")

    # ---------------------------------------------------------------- error handlers
    @app.exception_handler(RequestError)
    async def _request_error(request: Request, err: RequestError):
        return _error(422, "invalid_input", err.message, field=err.field, expected=err.expected)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        resp = _error(err.status, err.error, err.message, **err.extra)
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, err: BodyTooLarge):
        return _error(413, "payload_too_large", f"request body exceeds the limit of {int(settings.max_body_mb * 2**20)} bytes")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {"loc": ("body",), "msg": "invalid request"}
        return _error(422, "invalid_input", str(first.get("msg")), field=".".join(str(x) for x in first.get("loc", ())))

    @app.exception_handler(Exception)
    async def _internal(request: Request, err: Exception):
        return _error(500, "internal_error", "the server failed to handle this request")

    # ---------------------------------------------------------------- parsing
    async def read_records(request: Request) -> list[Any]:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            try:
                form = await request.form()
            except BodyTooLarge:
                raise
            except Exception as err:
                raise RequestError("body", f"unreadable multipart form ({err})", "multipart/form-data with one field per modality") from None
            record: dict[str, Any] = {}
            for key, value in form.multi_items():
                if key not in engine.preprocessors:
                    raise RequestError(key, "unknown modality", f"one of {engine.names}")
                pre = engine.preprocessors[key]
                if hasattr(value, "read"):
                    data = await value.read()
                    if not pre.uploads:
                        value = data.decode("utf-8", errors="replace")
                    else:
                        record[key] = data
                        continue
                elif pre.uploads:
                    raise RequestError(key, "expected a file upload", f"a {pre.kind} file part")
                if pre.json_parts:
                    try:
                        value = json.loads(value)
                    except ValueError:
                        raise RequestError(key, "expected JSON text (a list of numbers or an object)") from None
                record[key] = value
            return [record]
        body = await request.body()
        if not body:
            raise RequestError("body", "the request body is empty", '{"records": [...]}')
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise RequestError("body", f"invalid JSON ({str(err)[:120]})", "a JSON object") from None
        return engine.records_of(parsed)

    async def encode(request: Request):
        records = await read_records(request)
        size = request.headers.get("content-length")  # unknown (chunked): treat as large
        if heavy and (size is None or not size.isdigit() or int(size) > OFFLOAD_BYTES):
            return await run_in_threadpool(engine.encode_records, records)
        return engine.encode_records(records)

    # ---------------------------------------------------------------- routes
    @app.get("/health", response_model=HealthResponse)
    async def health():
        return {"status": "ok", "modalities": engine.names, "version": __version__}

    @app.get("/metadata", dependencies=[Depends(authorize)], responses={401: ERRORS[401]})
    async def metadata():
        return {"inputs": engine.schema(), "outputs": engine.outputs(), "card": card or {},
                "server": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms,
                           "timeout_s": settings.timeout_s, "max_body_mb": settings.max_body_mb}}

    @app.post("/predict", response_model=PredictResponse, dependencies=[Depends(authorize)], responses=ERRORS, openapi_extra=BODY_DOC)
    async def predict(request: Request):
        enc = await encode(request)
        try:
            results = await asyncio.wait_for(batcher.submit(enc), settings.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"the prediction took longer than {settings.timeout_s} s") from None
        for i, r in enumerate(results):
            if "error" in r:
                raise ApiError(422, r["error"], f"record {i}: {r['message']} (inputs out of the range the model handles?)", field=f"records[{i}]")
        return JSONResponse({"results": results})

    @app.post("/embed", response_model=EmbedResponse, dependencies=[Depends(authorize)], responses=ERRORS, openapi_extra=BODY_DOC)
    async def embed(request: Request):
        enc = await encode(request)
        loop = asyncio.get_running_loop()
        try:
            results = await asyncio.wait_for(loop.run_in_executor(executor, engine.embed, enc), settings.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"the embedding took longer than {settings.timeout_s} s") from None
        for i, r in enumerate(results):
            if not all(math.isfinite(x) for x in r["fused"]):
                raise ApiError(422, "non_finite_output", f"record {i}: the embedding is not finite", field=f"records[{i}]")
        return JSONResponse({"results": results})

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=[Depends(authorize)])
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    app.add_middleware(GuardMiddleware, limit_bytes=int(settings.max_body_mb * 2**20), metrics=metrics)
    if settings.audit is not None:  # outermost: 413s from the guard are audited too
        app.add_middleware(AuditMiddleware, log=settings.audit)
    return app


def serve(bundle: str | Path, host: str = "127.0.0.1", port: int = 8000, settings: Optional[ServeSettings] = None, log_level: str = "warning") -> None:
    """Load, verify and serve a bundle with uvicorn (one process)."""
    import uvicorn

    try:
        app = create_app(bundle, settings)
    except ModalfuseError:
        raise
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
