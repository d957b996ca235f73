"""Request records → encoded arrays (validated field by field) → network outputs → JSON-ready results.

Validation happens per record, before batching, so one bad record never fails a micro-batch
that other requests share; images and audio arrive as base64 file bytes and are decoded in
memory (nothing is written to disk).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..data.batch import Batch
from ..data.dataset import Features, SkipReport
from ..errors import ConfigError, DataError, RequestError
from ..kinds.base import is_missing
from .limits import PayloadTooLarge

MISSING = object()


class Cancelled(Exception):
    """The request this work was for has timed out or gone."""


@dataclass
class Encoded:
    """Encoded records: per-modality arrays [n, ...] and presence masks [n]."""

    inputs: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.masks.values())))

    def slice(self, start: int, stop: int) -> "Encoded":
        return Encoded({n: v[start:stop] for n, v in self.inputs.items()}, {n: m[start:stop] for n, m in self.masks.items()})

    @staticmethod
    def concat(parts: list["Encoded"]) -> "Encoded":
        names = parts[0].inputs.keys()
        return Encoded({n: np.concatenate([p.inputs[n] for p in parts]) for n in names},
                       {n: np.concatenate([p.masks[n] for p in parts]) for n in names})


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
        """Per-modality input description, for /metadata (each kind describes itself)."""
        return {name: pre.schema() for name, pre in self.preprocessors.items()}

    def outputs(self) -> dict[str, Any]:
        m = self.model
        info: dict[str, Any] = {"task": m.task, "target": m.target}
        if m.task == "classification":
            info["classes"] = [_plain(c) for c in m.target_encoder.classes]
        info["uncertainty"] = hasattr(self.net.head, "uncertainty")
        info["weights"] = list(self.net.fusion.modalities)
        return info

    # ------------------------------------------------------------------ parsing
    @staticmethod
    def records_of(body: Any) -> list[Any]:
        """``{"records": [...]}`` or one record object."""
        if isinstance(body, dict) and "records" in body:
            extra = [k for k in body if k != "records"]
            if extra:
                raise RequestError(extra[0], "unknown key beside records", '{"records": [...]} and nothing else')
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

    def cells_of(self, records: list[Any], prefix: str = "records") -> list[dict[str, Optional[tuple]]]:
        """Validate every record's values and turn them into cells (nothing is decoded yet); None = missing."""
        return [self.record_cells(r, f"{prefix}[{i}]") for i, r in enumerate(records)]

    def decoded_size(self, cells: list[dict[str, Optional[tuple]]], budget: Optional[int] = None, prefix: str = "records") -> int:
        """Values the uploads among ``cells`` decode to (from their headers); PayloadTooLarge once past ``budget``."""
        total = 0
        for i, record in enumerate(cells):
            for name, value in record.items():
                pre = self.preprocessors[name]
                if value is None or not pre.uploads:
                    continue
                total += pre.request_size(value)
                if budget is not None and total > budget:
                    raise PayloadTooLarge(f"the request's images/audio decode to more than {budget * 4 / 2**20:g} MB of float32 "
                                          f"values (reached at {prefix}[{i}].{name}); send smaller files or fewer records",
                                          field=f"{prefix}[{i}].{name}")
        return total

    def encode_cells(self, cells: list[dict[str, Optional[tuple]]], prefix: str = "records",
                     cancelled: Optional[Callable[[], bool]] = None) -> Encoded:
        """Decode and encode validated cells; stops early (Cancelled) once ``cancelled()`` says the caller gave up."""
        per = []
        for i, record in enumerate(cells):
            if cancelled is not None and cancelled():
                raise Cancelled()
            per.append({n: None if c is None else self._encode_cells(self.preprocessors[n], c, f"{prefix}[{i}].{n}")
                        for n, c in record.items()})
        return self._stack(per)

    def encode_records(self, records: list[Any], prefix: str = "records") -> Encoded:
        return self.encode_cells(self.cells_of(records, prefix), prefix)

    def _stack(self, per: list[dict[str, Optional[np.ndarray]]]) -> Encoded:
        inputs = {n: np.stack([p[n] if p[n] is not None else _dense(self.preprocessors[n].empty()) for p in per]) for n in self.names}
        masks = {n: np.asarray([p[n] is not None for p in per], dtype=bool) for n in self.names}
        return Encoded(inputs, masks)

    def record_cells(self, record: Any, where: str) -> dict[str, Optional[tuple]]:
        if not isinstance(record, dict):
            raise RequestError(where, f"expected an object of modality values, got {type(record).__name__}",
                               f"an object with keys among {self.names}")
        unknown = [k for k in record if k not in self.preprocessors]
        if unknown:
            raise RequestError(f"{where}.{unknown[0]}", "unknown modality", f"one of {self.names}")
        out: dict[str, Optional[tuple]] = {}
        for name, pre in self.preprocessors.items():
            value = record.get(name, MISSING)
            cells = None if value is MISSING or value is None else pre.request_cells(value, f"{where}.{name}")
            out[name] = None if cells is None or all(is_missing(c) for c in cells) else cells
        if all(v is None for v in out.values()):
            raise RequestError(where, "no modality is present", f"at least one of {self.names}")
        return out

    def _encode_cells(self, pre, cells: tuple, field: str) -> Optional[np.ndarray]:
        try:
            decoded = pre.decode(cells, None)
            if decoded is None:
                return None
            encoded = _dense(pre.encode(decoded))
        except DataError as err:
            sub = f"{field}.{err.column}" if pre.kind == "tabular" and err.column else field
            raise RequestError(sub, err.reason) from None
        if encoded.dtype.kind == "f" and not np.isfinite(encoded).all():
            raise RequestError(field, "values out of range: the encoded input is not finite", "numbers of moderate magnitude")
        return encoded

    # ------------------------------------------------------------------ inference
    def _features(self, enc: Encoded) -> Features:
        n = len(enc)
        return Features({k: torch.from_numpy(v) for k, v in enc.inputs.items()},
                        {k: torch.from_numpy(v) for k, v in enc.masks.items()}, None, list(range(n)), SkipReport(None, n, n))

    @torch.inference_mode()
    def predict(self, enc: Encoded) -> list[dict[str, Any]]:
        """One result per record, from the model's own prediction path (``MultimodalModel.results``)."""
        res = self.model.results(self._features(enc))
        pred, proba, unc, weights = res["prediction"], res["proba"], res["uncertainty"], res["weights"]
        classes = [_plain(c) for c in self.model.target_encoder.classes] if proba is not None else None
        finite = np.isfinite(res["output"].numpy()).all(axis=1)
        results = []
        for i in range(len(enc)):
            if not finite[i]:
                results.append({"error": "non_finite_output", "message": "the model produced NaN or infinite output for this record"})
                continue
            r: dict[str, Any] = {"prediction": _plain(pred[i])}
            if proba is not None:
                r["probabilities"] = {str(c): float(p) for c, p in zip(classes, proba[i])}
            if unc:
                r["uncertainty"] = {k: float(v[i]) for k, v in unc.items()}
            r["modalities_used"] = [n for n in self.names if enc.masks[n][i]]
            if weights is not None:
                r["weights"] = {n: float(weights[i, j]) for j, n in enumerate(res["weight_names"])}
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


def _dense(value: Any) -> np.ndarray:
    """An encoded value as a dense array (a counts row is a 1-row sparse matrix)."""
    return value.toarray()[0] if hasattr(value, "toarray") else np.asarray(value)
