"""The server's OpenAPI document, stated from the served model so that it agrees with the server.

The record schema lists the model's modalities (no others), each value's exact JSON Schema from
its kind (``request_schema`` / ``missing_schema``) and requires one present modality; ``records``
holds 1 to ``max_records`` of them. Security and 401 answers are declared only when the server
has an API key. Kinds whose values JSON Schema cannot state (file bytes) are described as
closely as it allows and flagged ``x-exact: false``.
"""
from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel


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


def error_responses(*codes: int) -> dict[int, dict[str, Any]]:
    text = {401: "missing or invalid API key", 404: "no such route", 405: "method not allowed on this route",
            413: "request over a size limit (body bytes, decoded images/audio)", 422: "invalid field (named in `field`)",
            503: "too many open connections", 504: "took longer than the timeout"}
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}  # JSON on every route, /metrics too
    return {c: {"description": text[c], "content": ref} for c in codes}


def record_schema(engine) -> dict[str, Any]:
    """One record: modality → value (or its missing form), at least one present."""
    props, present, exact = {}, [], True
    for name, pre in engine.preprocessors.items():
        value = pre.request_schema()
        missing = [pre.missing_schema()] + ([] if pre.missing_schema() == {"type": "null"} else [{"type": "null"}])
        props[name] = {"anyOf": [value, *missing], "description": f"{pre.kind} modality; null or omitted = missing"}
        present.append({"required": [name], "properties": {name: value}})
        exact = exact and pre.request_schema_exact
    return {"type": "object", "additionalProperties": False, "properties": props, "anyOf": present, "x-exact": exact,
            "description": "modality → value; omit a modality (or send null) when it is missing; at least one is present"}


def body_doc(engine, max_records: int) -> dict[str, Any]:
    """The ``requestBody`` of /predict and /embed."""
    records = {"type": "object", "required": ["records"], "additionalProperties": False,
               "properties": {"records": {"type": "array", "minItems": 1, "maxItems": max_records,
                                          "items": {"$ref": "#/components/schemas/Record"}}}}
    content: dict[str, Any] = {"application/json": {"schema": {"anyOf": [records, {"$ref": "#/components/schemas/Record"}]}}}
    if any(pre.uploads for pre in engine.preprocessors.values()):
        parts = {name: ({"type": "string", "format": "binary"} if pre.uploads else
                        {"type": "string", "description": "JSON text" if pre.json_parts else "text"})
                 for name, pre in engine.preprocessors.items()}
        content["multipart/form-data"] = {"schema": {"type": "object", "properties": parts, "additionalProperties": False,
                                                     "minProperties": 1, "x-exact": False,
                                                     "description": "one record: a part per modality (images/audio as file uploads)"}}
    return {"requestBody": {"required": True, "content": content}}


def install(app, engine, settings) -> None:
    """Replace ``app.openapi`` with the generated document plus the model's record schema."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = default()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas["Record"] = record_schema(engine)
            schemas["ErrorResponse"] = ErrorResponse.model_json_schema()
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
