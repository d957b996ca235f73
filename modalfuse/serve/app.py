"""The HTTP server: FastAPI app with /health, /metadata, /predict, /embed and /metrics.

One process, one model. Requests are validated field by field (422 naming the field); bodies,
record counts and decoded image/audio sizes over their limits get 413 before any work is done
(``limits.py``); requests past the timeout 504, and their remaining work is dropped; slow clients
are cut off (``protocol.py``); any unexpected failure is a JSON 500 without a traceback.
Inference runs in one worker thread, fed by the micro-batcher; large decoding in worker threads.
With an API key, every route but /health (the OpenAPI document and /docs included) needs it.
"""
from __future__ import annotations

import asyncio
import gc
import hmac
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

import torch
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .audit import AuditMiddleware
from ..errors import RequestError
from . import openapi
from .batcher import MicroBatcher, run_chunked
from .bundle import BundleError, load_bundle
from .engine import Cancelled, Engine
from .limits import OFFLOAD_VALUES, PayloadTooLarge, ServeSettings, check_port
from .metrics import Metrics
from .openapi import EmbedResponse, HealthResponse, PredictResponse, error_responses


class BodyTooLarge(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        self.status, self.error, self.message, self.extra = status, error, message, extra
        super().__init__(message)


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
    decoders = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="modalfuse-decode", initializer=set_threads)
    batcher = MicroBatcher(lambda enc: engine.predict(enc), settings.max_batch, settings.max_wait_ms, executor, metrics.batch)
    uploads = any(p.uploads for p in engine.preprocessors.values())

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
        decoders.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="modalfuse model server", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, description="Predictions and embeddings of one modalfuse model; any modality may be omitted.")
    app.state.engine, app.state.batcher, app.state.metrics, app.state.settings = engine, batcher, metrics, settings
    bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")

    async def authorize(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        token = credentials.credentials if credentials is not None and credentials.scheme.lower() == "bearer" else ""
        if not token or not hmac.compare_digest(token.encode(), settings.api_key.encode()):
            raise ApiError(401, "unauthorized", "missing or invalid API key (send 'Authorization: Bearer <key>')")

    keyed = settings.api_key is not None
    guard = [Depends(authorize)] if keyed else []  # without a key no security is declared in the OpenAPI document
    auth = (401,) if keyed else ()
    body_doc = openapi.body_doc(engine, settings.max_records)

    # ---------------------------------------------------------------- error handlers
    @app.exception_handler(RequestError)
    async def _request_error(request: Request, err: RequestError):
        return _error(422, "invalid_input", err.message, field=err.field, expected=err.expected)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError):
        resp = _error(err.status, err.error, err.message, **err.extra)
        if err.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, err: BodyTooLarge):
        return _error(413, "payload_too_large", f"request body exceeds the limit of {settings.max_body_bytes} bytes")

    @app.exception_handler(PayloadTooLarge)
    async def _over_limit(request: Request, err: PayloadTooLarge):
        return _error(413, "payload_too_large", err.message, field=err.field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException):
        names = {404: "not_found", 405: "method_not_allowed"}
        resp = _error(err.status_code, names.get(err.status_code, "http_error"),
                      f"{request.method} {request.url.path}: {err.detail}")
        for k, v in (err.headers or {}).items():
            resp.headers[k] = v
        return resp

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
            return [await read_form(request)]
        body = await request.body()
        if not body:
            raise RequestError("body", "the request body is empty", '{"records": [...]}')
        records = engine.records_of(parse_json(body, "body"))
        if len(records) > settings.max_records:
            raise RequestError("records", f"{len(records)} records in one request; the limit is {settings.max_records}",
                               f"1 to {settings.max_records} records")
        return records

    async def read_form(request: Request) -> dict[str, Any]:
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
                if pre.uploads:
                    record[key] = data
                    continue
                value = data.decode("utf-8", errors="replace")
            elif pre.uploads:
                raise RequestError(key, "expected a file upload", f"a {pre.kind} file part")
            record[key] = parse_json(value, key) if pre.json_parts else value
        return record

    def parse_json(text: Any, field: str) -> Any:
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as err:
            what = "JSON nested too deeply" if isinstance(err, RecursionError) else f"invalid JSON ({str(err)[:120]})"
            raise RequestError(field, what, "JSON text: a list of numbers or an object" if field != "body" else "a JSON object") from None

    async def encode(request: Request, deadline: float, what: str):
        """Records → encoded arrays. Validation and size checks first; decoding of more than OFFLOAD_VALUES values
        (or more than one batch of records) runs in the decode threads and stops once the request times out."""
        records = await read_records(request)
        cells = engine.cells_of(records)
        size = engine.decoded_size(cells, settings.max_decoded_values) if uploads else 0
        if size <= OFFLOAD_VALUES and len(cells) <= settings.max_batch:
            return engine.encode_cells(cells)
        gone = threading.Event()
        work = asyncio.get_running_loop().run_in_executor(decoders, lambda: engine.encode_cells(cells, cancelled=gone.is_set))
        try:
            return await asyncio.wait_for(work, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            gone.set()
            raise ApiError(504, "timeout", f"the {what} took longer than {settings.timeout_s} s") from None

    async def run(request: Request, what: str, compute) -> list[Any]:
        deadline = time.monotonic() + settings.timeout_s
        enc = await encode(request, deadline, what)
        try:
            return await asyncio.wait_for(compute(enc), max(0.0, deadline - time.monotonic()))
        except (asyncio.TimeoutError, Cancelled):
            raise ApiError(504, "timeout", f"the {what} took longer than {settings.timeout_s} s") from None

    # ---------------------------------------------------------------- routes
    @app.get("/health", response_model=HealthResponse)
    async def health():
        return {"status": "ok", "modalities": engine.names, "version": __version__}

    @app.get("/metadata", dependencies=guard, responses=error_responses(*auth))
    async def metadata():
        return {"inputs": engine.schema(), "outputs": engine.outputs(), "card": card or {},
                "server": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms, "timeout_s": settings.timeout_s,
                           "max_body_mb": settings.max_body_mb, "max_records": settings.max_records,
                           "max_decoded_mb": settings.max_decoded_mb, "read_timeout_s": settings.read_timeout_s}}

    post_errors = error_responses(*auth, 413, 422, 504)

    @app.post("/predict", response_model=PredictResponse, dependencies=guard, responses=post_errors, openapi_extra=body_doc)
    async def predict(request: Request):
        results = await run(request, "prediction", batcher.submit)
        for i, r in enumerate(results):
            if "error" in r:
                raise ApiError(422, r["error"], f"record {i}: {r['message']} (inputs out of the range the model handles?)", field=f"records[{i}]")
        return JSONResponse({"results": results})

    @app.post("/embed", response_model=EmbedResponse, dependencies=guard, responses=post_errors, openapi_extra=body_doc)
    async def embed(request: Request):
        state = {"live": True}

        async def compute(enc):
            try:
                return await run_chunked(executor, engine.embed, enc, settings.max_batch, lambda: state["live"])
            finally:
                state["live"] = False

        results = await run(request, "embedding", compute)
        for i, r in enumerate(results):
            if not all(math.isfinite(x) for x in r["fused"]):
                raise ApiError(422, "non_finite_output", f"record {i}: the embedding is not finite", field=f"records[{i}]")
        return JSONResponse({"results": results})

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=guard, responses=error_responses(*auth))
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/openapi.json", dependencies=guard, include_in_schema=False)
    async def openapi_document():
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=guard, include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="modalfuse model server")

    openapi.install(app, engine, settings)
    app.add_middleware(GuardMiddleware, limit_bytes=settings.max_body_bytes, metrics=metrics)
    if settings.audit is not None:  # outermost: 413s from the guard are audited too
        app.add_middleware(AuditMiddleware, log=settings.audit)
    return app


def serve(bundle: str | Path, host: str = "127.0.0.1", port: int = 8000, settings: Optional[ServeSettings] = None, log_level: str = "warning") -> None:
    """Load, verify and serve a bundle with uvicorn (one process; slow clients cut off after ``read_timeout_s``)."""
    import uvicorn

    from .protocol import protocol_class

    settings = settings or ServeSettings()
    check_port(port)
    app = create_app(bundle, settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, http=protocol_class(settings.read_timeout_s),
                limit_concurrency=settings.max_connections, timeout_keep_alive=5)
