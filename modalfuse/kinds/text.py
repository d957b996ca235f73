"""Text: a word vocabulary fitted on the training texts, or a pretrained model's tokenizer."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import Field

from ..hub import resolve_pretrained
from .base import KINDS, KindOptions, Preprocessor, is_missing
from .request import string_cells, string_schema

_TOKEN = re.compile(r"[\w']+|[^\w\s]")
PAD, UNK = 0, 1


class TextOptions(KindOptions):
    max_tokens: int = Field(64, gt=0)
    max_vocab: int = Field(20000, gt=1)
    min_freq: int = Field(1, ge=1)
    lowercase: bool = True
    pretrained: Optional[str] = Field(
        None, description="Hugging Face model name or folder; 'minilm' for the bundled MiniLM. Sets the tokenizer."
    )
    join_with: str = " . "


@KINDS.register("text")
class TextPreprocessor(Preprocessor):
    Options = TextOptions
    default_encoder = "text_cnn"

    def setup(self) -> None:
        self.vocab: list[str] = ["<pad>", "<unk>"]
        self._index: dict[str, int] = {}
        self._tokenizer = None

    @property
    def tokenizer(self):
        """The pretrained tokenizer, loaded on first use."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(self.options.pretrained))
        return self._tokenizer

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> str:
        text = self.options.join_with.join(str(c).strip() for c in cells if not is_missing(c))
        return text.lower() if self.options.lowercase and not self.options.pretrained else text

    def fit(self, values: list[str]) -> None:
        self.fit_start()
        self.fit_update(values)
        self.fit_finish()

    def fit_start(self) -> None:
        """Token counts, updated chunk by chunk (the same order of first appearance as one pass)."""
        self._counts: Counter = Counter()

    def fit_update(self, values, counts=None) -> None:
        if self.options.pretrained:
            return
        for i, text in enumerate(values):
            tokens = _TOKEN.findall(text)
            if counts is None:
                self._counts.update(tokens)
            else:
                for tok in tokens:
                    self._counts[tok] += int(counts[i])

    def fit_finish(self) -> None:
        if not self.options.pretrained:
            kept = [t for t, c in self._counts.most_common(self.options.max_vocab - 2) if c >= self.options.min_freq]
            self.vocab = ["<pad>", "<unk>", *kept]
            self._index = {t: i for i, t in enumerate(self.vocab)}
        self._counts = Counter()
        self.fitted = True

    def encode(self, value: str) -> np.ndarray:
        n = self.options.max_tokens
        if self.options.pretrained:
            ids = self.tokenizer(value, truncation=True, max_length=n, padding="max_length")["input_ids"]
            return np.asarray(ids, dtype=np.int64)
        ids = [self._index.get(t, UNK) for t in _TOKEN.findall(value)[:n]]
        out = np.full(n, PAD, dtype=np.int64)
        out[: len(ids)] = ids
        return out

    def empty(self) -> np.ndarray:
        return np.full(self.options.max_tokens, self.pad_id, dtype=np.int64)

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id) if self.options.pretrained else PAD

    def encoder_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"pad_id": self.pad_id, "unk_id": int(self.tokenizer.unk_token_id) if self.options.pretrained else UNK}
        if self.options.pretrained:
            info["pretrained"] = self.options.pretrained
        else:
            info["vocab_size"] = len(self.vocab)
        return info

    def state_dict(self) -> dict[str, Any]:
        return {} if self.options.pretrained else {"vocab": self.vocab}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "vocab" in state:
            self.vocab = list(state["vocab"])
            self._index = {t: i for i, t in enumerate(self.vocab)}
        super().load_state_dict(state)

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "type": "string"}

    def request_cells(self, value: Any, field: str) -> tuple:
        return string_cells(self.config.columns, value, field)

    request_schema_exact = True

    def request_schema(self) -> dict[str, Any]:
        return string_schema(self.config.columns)[0]

    def missing_schema(self) -> dict[str, Any]:
        return string_schema(self.config.columns)[1]
