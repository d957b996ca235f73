"""A modality kind: one class per kind, registered in ``KINDS``, holding everything about it.

- ``Options``: the kind's typed options (``modalities[].options``);
- the preprocessor steps: decode a table cell, fit state on training rows, encode to an array.
  Decoding (reading files, parsing strings) does not depend on fitted state, so its results can be
  cached on disk; fitting (vocabularies, statistics, category maps) sees the training split only;
- ``default_encoder`` (encoders declare the kinds they accept, ``Encoder.kinds``);
- serving: ``schema`` for /metadata and ``request_cells``, which turns one JSON (or multipart)
  value into the cells ``decode`` reads; ``file_cells`` says table cells may be file paths and
  ``uploads`` that requests send file bytes;
- ONNX: ``example`` inputs, or ``onnx_unsupported`` saying why the kind cannot be exported.

Adding a kind is one module defining such a class with ``@KINDS.register(name)`` and one import
line in ``kinds/__init__.py`` (or a ``modalfuse.plugins`` entry point).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..config import ModalityConfig
from ..errors import RequestError
from ..registry import Registry


def is_missing(value: Any) -> bool:
    """An empty cell: None, NaN, or an empty/blank string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return False


class KindOptions(BaseModel):
    """Base of every kind's options; unknown keys are refused. ``kind`` repeats the modality's kind (saved configs carry
    it; ``ModalityConfig`` fills it in, so ``ImageOptions(size=(16, 16))`` needs none)."""

    model_config = ConfigDict(extra="forbid")

    kind: Optional[str] = None


class Preprocessor(ABC):
    """Turns the cells of one modality into fixed-shape arrays; state is JSON-serialisable."""

    Options: ClassVar[type[KindOptions]]
    #: the encoder a modality of this kind gets when its config names none
    default_encoder: ClassVar[str]
    #: whether decoded values are worth caching on disk (file decoding)
    cacheable: ClassVar[bool] = False
    #: values that cannot be stacked into one tensor (graphs) are always stored once per distinct value
    indexed: ClassVar[bool] = False
    #: cells may be file paths (relative to the table's folder)
    file_cells: ClassVar[bool] = False
    #: requests send the file's bytes (a multipart file part, or base64 in JSON)
    uploads: ClassVar[bool] = False
    #: a multipart text part of this kind holds JSON (a list or an object), not plain text
    json_parts: ClassVar[bool] = False
    #: whether ``request_schema`` states exactly which request values are accepted (kinds that state it set True)
    request_schema_exact: ClassVar[bool] = False
    #: why ONNX export cannot express this kind (None: it can)
    onnx_unsupported: ClassVar[Optional[str]] = None
    #: nothing is fitted (streaming fits then skip the pass over the values)
    stateless: ClassVar[bool] = False
    #: slow-to-import modules decoding may need, imported once in the decode workers' fork server, not per worker
    worker_imports: ClassVar[tuple[str, ...]] = ()

    @property
    def kind(self) -> str:
        """The name the class is registered under in ``KINDS``."""
        return self.registry_name

    def __init__(self, config: ModalityConfig) -> None:
        self.config = config
        self.options = config.options
        self.fitted = False
        self.setup()

    def setup(self) -> None:
        """Initial (unfitted) state from ``self.options``; kinds with state override it."""

    def decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> Any | None:
        """Read one row's cells; None when the modality is missing. Raises DataError."""
        if all(is_missing(c) for c in cells):
            return None
        return self._decode(cells, base_dir)

    @abstractmethod
    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> Any | None: ...

    def fit(self, values: list[Any]) -> None:
        """Fit state on decoded, present training values."""
        self.fitted = True

    # -- streaming fit: fit_start, fit_update per chunk of training values, fit_finish ---------------
    # Kinds override these to keep running statistics (out-of-core data, ``data.storage: disk``); this
    # fallback gathers the values and calls ``fit`` once, so a kind without them still works, in memory.
    def fit_start(self) -> None:
        self._fit_values: list[Any] = []

    def fit_update(self, values: list[Any], counts: Optional[np.ndarray] = None) -> None:
        """Add training values (``counts``: how many rows hold each; default one)."""
        if counts is None:
            self._fit_values.extend(values)
        else:
            self._fit_values.extend(v for v, c in zip(values, counts) for _ in range(int(c)))

    def fit_finish(self) -> None:
        values, self._fit_values = self._fit_values, []
        self.fit(values)

    # -- compact storage (disk shards): decoded values stored small, encoded batch by batch --------
    def stored(self) -> Optional[tuple[tuple[int, ...], np.dtype]]:
        """Shape and dtype of a decoded value on disk (e.g. uint8 pixels), or None: shards then hold encoded arrays."""
        return None

    # the defaults store a decoded value as it is; kinds with a smaller stored form (uint8 pixels) override all three
    def compact(self, value: Any) -> np.ndarray:
        """A decoded value in its stored form (``stored()``)."""
        return np.asarray(value)

    def expand(self, arrays: np.ndarray) -> np.ndarray:
        """Stored arrays [n, ...] back to decoded values (float), for fitting."""
        return arrays

    def encode_stored(self, arrays: np.ndarray) -> np.ndarray:
        """Stored arrays [n, ...] → encoded arrays, the same as ``stack([encode(v) ...])`` of the decoded values."""
        return np.stack([self.encode(a) for a in self.expand(arrays)])

    @abstractmethod
    def encode(self, value: Any) -> np.ndarray:
        """Fitted transform of one decoded value. Raises DataError."""

    @abstractmethod
    def empty(self) -> np.ndarray:
        """The placeholder stored for a missing value (never seen by fusion)."""

    def stack(self, values: list[Any]) -> Any:
        """Encoded values → the tensor (or value table) the encoder reads."""
        import torch

        return torch.from_numpy(np.stack(values)) if values else torch.from_numpy(self.empty()[None][:0])

    def encoder_info(self) -> dict[str, Any]:
        """What the encoder needs to build itself (vocabulary size, channels, ...)."""
        return {}

    def imputed(self, values: list[Any]) -> dict[str, int]:
        """How many cells of these decoded, present values ``encode`` fills in or maps instead of reading
        (a run's report counts them); kinds that never do so return {}."""
        return {}

    def decode_key(self) -> dict[str, Any]:
        """The options that change decoding, for the cache key."""
        return self.options.model_dump()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fitted = True

    # -- serving ----------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        """This modality's input description for /metadata (kinds add their type and limits)."""
        return {"kind": self.kind, "columns": list(self.config.columns), "optional": True}

    def request_cells(self, value: Any, field: str) -> tuple:
        """One request value → the cells ``decode`` reads; raises RequestError naming ``field``."""
        raise RequestError(field, f"modality kind {self.kind!r} is not servable")

    def request_schema(self) -> dict[str, Any]:
        """JSON Schema of a present request value, for the OpenAPI document (``request_schema_exact``: whether
        it admits exactly what ``request_cells`` + ``decode`` accept; file bytes cannot be described so)."""
        return {}

    def missing_schema(self) -> dict[str, Any]:
        """JSON Schema of a request value that means "missing" (besides an omitted key)."""
        return {"type": "null"}

    def request_size(self, cells: tuple[Any, ...]) -> int:
        """How many values decoding these request cells produces before any resizing (pixels × bands, audio
        samples): the server's decode budget is counted in these, read from file headers before decoding."""
        return int(np.prod(self.empty().shape))

    # -- ONNX -------------------------------------------------------------------------------
    def example(self, n: int, generator):
        """``n`` random encoded inputs of the right shape and type (ONNX export and its parity check)."""
        import torch

        empty = torch.from_numpy(self.empty())
        if empty.dtype == torch.int64:
            high = max(2, int(self.encoder_info().get("vocab_size", 2)))
            return torch.randint(0, high, (n, *empty.shape), generator=generator)
        return torch.randn(n, *empty.shape, generator=generator)


class FileKind(Preprocessor):
    """A kind whose cells name files (or hold their bytes) that are expensive to decode: cached, uploaded as bytes."""

    cacheable = True
    file_cells = True
    uploads = True
    request_schema_exact = False

    def request_cells(self, value: Any, field: str) -> tuple:
        from .request import file_bytes

        return (file_bytes(value, field),)

    def request_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "byte", "minLength": 1, "description": "base64 file bytes (a data: URL prefix is accepted)"}


KINDS: Registry[Preprocessor] = Registry("kind")


def resolve_path(value: Any, base_dir: Path | None) -> Path:
    path = Path(str(value).strip())
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path
