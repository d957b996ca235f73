"""Character sequences (proteins, DNA, SMILES): one index per character, padded to max_len."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import Field

from ..errors import DataError
from .base import KINDS, KindOptions, Preprocessor
from .request import string_cells, string_schema

PAD = 0


class SequenceOptions(KindOptions):
    alphabet: Optional[str] = Field(None, description="Allowed characters; fitted on the training data when unset.")
    max_len: int = Field(1000, gt=0)
    uppercase: bool = True


@KINDS.register("sequence")
class SequencePreprocessor(Preprocessor):
    Options = SequenceOptions
    default_encoder = "sequence_cnn"

    def setup(self) -> None:
        self.alphabet: str = self.options.alphabet or ""
        self._index = {c: i + 1 for i, c in enumerate(self.alphabet)}

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> str:
        seq = "".join(str(c).strip() for c in cells)
        return seq.upper() if self.options.uppercase else seq

    def fit(self, values: list[str]) -> None:
        if not self.options.alphabet:
            self.alphabet = "".join(sorted(set("".join(values))))
            self._index = {c: i + 1 for i, c in enumerate(self.alphabet)}
        super().fit(values)

    def encode(self, value: str) -> np.ndarray:
        index = self._index
        unknown = sorted(set(value) - set(index))
        if unknown:
            raise DataError(f"characters {''.join(unknown)!r} are not in the alphabet {self.alphabet!r}")
        out = np.full(self.options.max_len, PAD, dtype=np.int64)
        ids = [index[c] for c in value[: self.options.max_len]]
        out[: len(ids)] = ids
        return out

    def empty(self) -> np.ndarray:
        return np.full(self.options.max_len, PAD, dtype=np.int64)

    def encoder_info(self) -> dict[str, Any]:
        return {"vocab_size": len(self.alphabet) + 1, "pad_id": PAD, "max_len": self.options.max_len}

    def state_dict(self) -> dict[str, Any]:
        return {"alphabet": self.alphabet}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alphabet = state["alphabet"]
        self._index = {c: i + 1 for i, c in enumerate(self.alphabet)}
        super().load_state_dict(state)

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "type": "string", "alphabet": self.alphabet, "max_len": self.options.max_len}

    request_schema_exact = False  # the alphabet check is not stated

    def request_cells(self, value: Any, field: str) -> tuple:
        return string_cells(self.config.columns, value, field)

    def request_schema(self) -> dict[str, Any]:
        return string_schema(self.config.columns)[0]

    def missing_schema(self) -> dict[str, Any]:
        return string_schema(self.config.columns)[1]
