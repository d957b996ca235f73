"""Request records → encoded arrays (validated field by field) → network outputs → JSON-ready results.

Validation happens per record, before batching, so one bad record never fails a micro-batch
that other requests share; images and audio arrive as base64 file bytes and are decoded in
memory (nothing is written to disk).
"""
from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from ..data.batch import Batch
from ..data.dataset import Features, SkipReport
from ..errors import ConfigError, DataError

MISSING = object()


class RequestError(ValueError):
    """A request field is invalid: ``field`` names it (``records[0].pixels``), ``expected`` says what fits."""

    def __init__(self, field: str, message: str, expected: Optional[str] = None) -> None:
        self.field, self.message, self.expected = field, message, expected
        super().__init__(f"{field}: {message}")

    def to_dict(self) -> dict[str, Any]:
        out = {"field": self.field, "message": self.message}
        if self.expected:
            out["expected"] = self.expected
        return out


@dataclass
class Encoded:
    """Encoded records: per-modality arrays [n, ...] and presence masks [n]."""

    inputs: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.masks.values())))

    @staticmethod
    def concat(parts: list["Encoded"]) -> "Encoded":
        names = parts[0].inputs.keys()
        return Encoded({n: np.concatenate([p.inputs[n] for p in parts]) for n in names},
                       {n: np.concatenate([p.masks[n] for p in parts]) for n in names})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_numbers(values: list) -> bool:
    """Every item a plain int or float (not bool) that is finite as a float: one vectorised check."""
    if not all(type(x) is float or type(x) is int for x in values):
        return False
    try:
        return bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())
    except OverflowError:
        return False


def _finite(value: Any) -> bool:
    """A finite number that fits a float (huge JSON integers overflow)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class Engine:
    """Wraps a fitted MultimodalModel for serving: schema, parsing, batched prediction and embeddings."""

    def __init__(self, model) -> None:
        graphs = [name for name, pre in model.preprocessors.items() if pre.indexed]
        if graphs:
            raise ConfigError(
                f"modalities {graphs} are graphs, which the REST server cannot take yet; predict with the Python API "
                "or `modalfuse predict MODEL TABLE` instead"
            )
        self.model = model
        self.net = model._require_fitted()
        self.net.eval()
        self.preprocessors = model.preprocessors
        self.names = list(self.preprocessors)

    # ------------------------------------------------------------------ schema
    def schema(self) -> dict[str, Any]:
        """Per-modality input description, for /metadata."""
        out = {}
        for name, pre in self.preprocessors.items():
            kind, opts = pre.kind, pre.options
            item: dict[str, Any] = {"kind": kind, "columns": list(pre.config.columns), "optional": True}
            if kind == "vector":
                item.update(type="array of numbers", length=pre.dim if len(pre.config.columns) == 1 else len(pre.config.columns))
            elif kind in ("text", "sequence"):
                item.update(type="string")
                if kind == "sequence":
                    item.update(alphabet=pre.alphabet, max_len=opts.max_len)
            elif kind == "tabular":
                item.update(type="object", numeric=list(pre.numeric),
                            categorical={c: list(cats) for c, cats in zip(pre.categorical, pre.categories)},
                            handle_unknown=opts.handle_unknown)
            elif kind == "image":
                item.update(type="string (base64 image file bytes: PNG, JPEG, ...)", size=list(opts.size), channels=opts.channels)
            elif kind == "audio":
                item.update(type="string (base64 audio file bytes: WAV, FLAC, OGG)", sample_rate=opts.sample_rate, max_seconds=opts.max_seconds)
            out[name] = item
        return out

    def outputs(self) -> dict[str, Any]:
        m = self.model
        info: dict[str, Any] = {"task": m.task, "target": m.target}
        if m.task == "classification":
            info["classes"] = [_plain(c) for c in m.target_encoder.classes]
        info["uncertainty"] = hasattr(self.net.head, "uncertainty")
        info["weights"] = list(getattr(self.net.fusion, "modalities", []) or [])
        return info

    # ------------------------------------------------------------------ parsing
    @staticmethod
    def records_of(body: Any) -> list[Any]:
        """``{"records": [...]}`` or one record object."""
        if isinstance(body, dict) and "records" in body:
            records = body["records"]
            if not isinstance(records, list):
                raise RequestError("records", f"expected a list of record objects, got {type(records).__name__}")
            if not records:
                raise RequestError("records", "the list is empty", "at least one record")
            return records
        if isinstance(body, dict):
            return [body]
        raise RequestError("body", f"expected a JSON object, got {type(body).__name__}",
                           '{"records": [{modality: value, ...}, ...]} or one record object')

    def encode_records(self, records: list[Any], prefix: str = "records") -> Encoded:
        per = [self.encode_record(r, f"{prefix}[{i}]") for i, r in enumerate(records)]
        inputs = {n: np.stack([p[n] if p[n] is not None else self.preprocessors[n].empty() for p in per]) for n in self.names}
        masks = {n: np.asarray([p[n] is not None for p in per], dtype=bool) for n in self.names}
        return Encoded(inputs, masks)

    def encode_record(self, record: Any, where: str) -> dict[str, Optional[np.ndarray]]:
        if not isinstance(record, dict):
            raise RequestError(where, f"expected an object of modality values, got {type(record).__name__}",
                               f"an object with keys among {self.names}")
        unknown = [k for k in record if k not in self.preprocessors]
        if unknown:
            raise RequestError(f"{where}.{unknown[0]}", "unknown modality", f"one of {self.names}")
        out: dict[str, Optional[np.ndarray]] = {}
        for name, pre in self.preprocessors.items():
            field = f"{where}.{name}"
            value = record.get(name, MISSING)
            out[name] = None if value is MISSING or value is None else self._encode_value(pre, value, field)
        if all(v is None for v in out.values()):
            raise RequestError(where, "no modality is present", f"at least one of {self.names}")
        return out

    def _encode_value(self, pre, value: Any, field: str) -> Optional[np.ndarray]:
        cells = self._cells(pre, value, field)
        try:
            decoded = pre.decode(cells, None)
            if decoded is None:
                return None
            encoded = np.asarray(pre.encode(decoded))
        except DataError as err:
            sub = f"{field}.{err.column}" if pre.kind == "tabular" and err.column else field
            raise RequestError(sub, err.reason) from None
        if encoded.dtype.kind == "f" and not np.isfinite(encoded).all():
            raise RequestError(field, "values out of range: the encoded input is not finite", "numbers of moderate magnitude")
        return encoded

    def _cells(self, pre, value: Any, field: str) -> tuple:
        kind, columns = pre.kind, pre.config.columns
        if kind == "vector":
            return self._vector_cells(pre, value, field)
        if kind in ("text", "sequence"):
            if isinstance(value, str):
                return (value,) + (None,) * (len(columns) - 1)
            if isinstance(value, dict) and len(columns) > 1:
                bad = [k for k in value if k not in columns]
                if bad:
                    raise RequestError(f"{field}.{bad[0]}", "unknown column", f"one of {columns}")
                for k, v in value.items():
                    if v is not None and not isinstance(v, str):
                        raise RequestError(f"{field}.{k}", f"expected a string, got {type(v).__name__}")
                return tuple(value.get(c) for c in columns)
            raise RequestError(field, f"expected a string, got {type(value).__name__}", "a string")
        if kind == "tabular":
            if not isinstance(value, dict):
                raise RequestError(field, f"expected an object of column values, got {type(value).__name__}", f"an object with keys among {columns}")
            bad = [k for k in value if k not in columns]
            if bad:
                raise RequestError(f"{field}.{bad[0]}", "unknown column", f"one of {columns}")
            cells = []
            for c in columns:
                v = value.get(c)
                if c in pre.numeric:
                    if v is not None and not _is_number(v):
                        raise RequestError(f"{field}.{c}", f"expected a number or null, got {_short(v)}", "a number")
                    if v is not None and not _finite(v):
                        raise RequestError(f"{field}.{c}", f"expected a finite number, got {v!r} (use null for missing)", "a finite number")
                elif v is not None and not (isinstance(v, str) or _is_number(v)):
                    raise RequestError(f"{field}.{c}", f"expected a category (string or number) or null, got {type(v).__name__}")
                elif _is_number(v) and not _finite(v):
                    raise RequestError(f"{field}.{c}", f"expected a category, got {v!r} (use null for missing)")
                cells.append(v)
            return tuple(cells)
        if kind in ("image", "audio"):
            return (_b64(value, field),)
        raise RequestError(field, f"modality kind {kind!r} is not servable")

    def _vector_cells(self, pre, value: Any, field: str) -> tuple:
        columns = pre.config.columns
        expected_len = pre.dim if len(columns) == 1 else len(columns)
        expect = f"a list of {expected_len} finite numbers"
        if not isinstance(value, list):
            raise RequestError(field, f"expected a list of numbers, got {type(value).__name__}", expect)
        if not value:
            raise RequestError(field, "the vector is empty (omit the field or send null for a missing modality)", expect)
        if not _finite_numbers(value):  # find and name the first bad entry
            for j, x in enumerate(value):
                if not _is_number(x):
                    raise RequestError(f"{field}[{j}]", f"expected a number, got {_short(x)}", expect)
                if not _finite(x):
                    raise RequestError(f"{field}[{j}]", f"expected a finite number, got {_short(x)}", expect)
        if expected_len and len(value) != expected_len:
            raise RequestError(field, f"wrong vector length: expected {expected_len} numbers, got {len(value)}", expect)
        try:
            array = np.asarray(value, dtype=np.float32)
        except OverflowError:
            array = np.full(1, np.inf, dtype=np.float32)
        if not np.isfinite(array).all():
            raise RequestError(field, "values out of range for float32", expect)
        return (array,) if len(columns) == 1 else tuple(float(x) for x in value)

    # ------------------------------------------------------------------ inference
    def _features(self, enc: Encoded) -> Features:
        n = len(enc)
        return Features({k: torch.from_numpy(v) for k, v in enc.inputs.items()},
                        {k: torch.from_numpy(v) for k, v in enc.masks.items()}, None, list(range(n)), SkipReport(None, n, n))

    @torch.inference_mode()
    def _outputs(self, enc: Encoded) -> dict[str, Any]:
        """``MultimodalModel.outputs`` without MC dropout, in one pass and without re-toggling train/eval.

        Ensembles (several members) go through ``MultimodalModel.outputs`` itself.
        """
        if len(getattr(self.model, "members", [self.net])) > 1:
            return self.model.outputs(self._features(enc))
        net, head = self.net, self.net.head
        batch = Batch({k: torch.from_numpy(v) for k, v in enc.inputs.items()},
                      {k: torch.from_numpy(v) for k, v in enc.masks.items()}, None, torch.arange(len(enc)))
        if net.training:
            net.eval()
        result = net(batch)
        output = result.output
        if self.model.temperature != 1.0:
            output = output / self.model.temperature
        unc = {"aleatoric": head.uncertainty(result.output)} if hasattr(head, "uncertainty") else {}
        return {"output": output, "weights": result.weights, "uncertainty": unc}

    def predict(self, enc: Encoded) -> list[dict[str, Any]]:
        """One result per record, the same numbers as ``predict_frame``."""
        m, head = self.model, self.net.head
        res = self._outputs(enc)
        out = res["output"]
        pred = m.target_encoder.decode(head.predict(out).numpy())
        proba = head.proba(out).numpy() if m.task == "classification" else None
        classes = [_plain(c) for c in m.target_encoder.classes] if proba is not None else None
        unc = {k: v.numpy() for k, v in res["uncertainty"].items()}
        weights = res["weights"].numpy() if res["weights"] is not None else None
        wnames = list(getattr(self.net.fusion, "modalities", []) or [])
        results = []
        for i in range(len(enc)):
            finite = np.isfinite(out[i].numpy()).all()
            if not finite:
                results.append({"error": "non_finite_output", "message": "the model produced NaN or infinite output for this record"})
                continue
            r: dict[str, Any] = {"prediction": _plain(pred[i])}
            if proba is not None:
                r["probabilities"] = {str(c): float(p) for c, p in zip(classes, proba[i])}
            if unc:
                r["uncertainty"] = {k: float(v[i]) for k, v in unc.items()}
            r["modalities_used"] = [n for n in self.names if enc.masks[n][i]]
            if weights is not None:
                r["weights"] = {n: float(weights[i, j]) for j, n in enumerate(wnames)}
            results.append(r)
        return results

    @torch.no_grad()
    def embed(self, enc: Encoded) -> list[dict[str, Any]]:
        """Per-modality and fused embeddings (of the first member, for an ensemble)."""
        batch = Batch({k: torch.from_numpy(v) for k, v in enc.inputs.items()},
                      {k: torch.from_numpy(v) for k, v in enc.masks.items()}, None, torch.arange(len(enc)))
        self.net.eval()
        per = self.net.embed(batch)
        fused = self.net.fused(batch).fused.numpy()
        out = []
        for i in range(len(enc)):
            emb = {n: (per[n][i].tolist() if enc.masks[n][i] else None) for n in self.names}
            out.append({"modalities": emb, "fused": fused[i].tolist(), "modalities_used": [n for n in self.names if enc.masks[n][i]]})
        return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _b64(value: Any, field: str) -> bytes:
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
