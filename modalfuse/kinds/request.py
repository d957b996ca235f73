"""Checks shared by the kinds' request parsers (JSON values of a REST request → table-like cells)."""
from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from ..errors import RequestError


#: request numbers must be finite and at most this large in magnitude (standardised, they still fit a float32)
MAX_MAGNITUDE = 1e30
NUMBER_SCHEMA = {"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_numbers(values: list) -> bool:
    """Every item a plain int or float (not bool), finite and within ``MAX_MAGNITUDE``: one vectorised check."""
    if not all(type(x) is float or type(x) is int for x in values):
        return False
    try:
        return bool((np.abs(np.asarray(values, dtype=np.float64)) <= MAX_MAGNITUDE).all())
    except OverflowError:
        return False


def finite(value: Any) -> bool:
    """A finite number within ``MAX_MAGNITUDE`` (huge JSON integers overflow a float)."""
    try:
        return abs(float(value)) <= MAX_MAGNITUDE
    except OverflowError:
        return False


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def file_bytes(value: Any, field: str) -> bytes:
    """A file sent as bytes (multipart) or as a base64 string (JSON, optionally a data: URL)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise RequestError(field, f"expected a base64 string of file bytes, got {type(value).__name__}", "base64-encoded file bytes")
    text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(field, "not valid base64", "base64-encoded file bytes") from None
    if not data:
        raise RequestError(field, "empty file", "base64-encoded file bytes")
    return data


def column_object(columns: list[str], value: Any, field: str, what: str = "column values") -> dict:
    """``value`` as an object whose keys are among ``columns`` (the first unknown key is named)."""
    if not isinstance(value, dict):
        raise RequestError(field, f"expected an object of {what}, got {type(value).__name__}", f"an object with keys among {columns}")
    bad = [k for k in value if k not in columns]
    if bad:
        raise RequestError(f"{field}.{bad[0]}", "unknown column", f"one of {columns}")
    return value


def string_schema(columns: list[str]) -> tuple[dict, dict]:
    """(present, missing) JSON Schemas of a text-like value: a string with a non-blank character, or for
    several columns an object of column → string|null with one of them non-blank (blank = missing)."""
    blank = {"type": "string", "pattern": "^\\s*$"}
    text = {"type": "string", "pattern": "\\S"}
    if len(columns) == 1:
        return text, {"anyOf": [{"type": "null"}, blank]}
    return object_schemas(columns, {c: text for c in columns}, {c: blank for c in columns})


def object_schemas(columns: list[str], present: dict, missing: dict) -> tuple[dict, dict]:
    """(present, missing) schemas of an object of column values: present when one column holds a present value."""
    props = {c: {"anyOf": [present[c], missing.get(c, {"type": "null"}), {"type": "null"}]} for c in columns}
    base = {"type": "object", "additionalProperties": False, "properties": props}
    some = {**base, "anyOf": [{"required": [c], "properties": {c: present[c]}} for c in columns]}
    none = {"type": "object", "additionalProperties": False,
            "properties": {c: {"anyOf": [missing.get(c, {"type": "null"}), {"type": "null"}]} for c in columns}}
    return some, none


def string_cells(columns: list[str], value: Any, field: str) -> tuple:
    """One string, or an object of column → string for a multi-column text modality."""
    if isinstance(value, str):
        return (value,) + (None,) * (len(columns) - 1)
    if isinstance(value, dict) and len(columns) > 1:
        for k, v in column_object(columns, value, field).items():
            if v is not None and not isinstance(v, str):
                raise RequestError(f"{field}.{k}", f"expected a string, got {type(v).__name__}")
        return tuple(value.get(c) for c in columns)
    raise RequestError(field, f"expected a string, got {type(value).__name__}", "a string")
