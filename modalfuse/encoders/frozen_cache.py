"""Outputs of a frozen pretrained backbone, computed once per distinct input and kept in memory and on disk.

A frozen backbone (``freeze: true``) is a fixed function, so its pooled output for an input never changes:
epochs after the first, and later runs with the same model, look it up instead of running the network.
Keys are SHA-1 digests of each input row's bytes (token ids, standardised pixels); the disk copy is a folder
of safetensors parts (``keys`` [n, 20] uint8, ``values`` [n, d]) per backbone identity, written atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch


class FrozenCache:
    def __init__(self, identity: dict, folder: Optional[Path] = None, flush_every: int = 4096) -> None:
        self.identity = identity
        self.key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]
        self.memory: dict[bytes, torch.Tensor] = {}
        self.pending: list[bytes] = []
        self.flush_every = flush_every
        self.folder: Optional[Path] = None
        self.computed = 0  # rows the backbone ran on (for tests and benchmarks)
        if folder is not None:
            self.use_folder(folder)

    def use_folder(self, root: Path) -> None:
        """Keep the cache under ``root/<backbone identity>/`` and load what earlier runs stored there."""
        self.folder = Path(root) / self.key
        if not self.folder.is_dir():
            return
        from safetensors.torch import load_file

        for part in sorted(self.folder.glob("part-*.safetensors")):
            try:
                data = load_file(str(part))
            except Exception:  # a damaged part: drop it, its rows are computed again
                part.unlink(missing_ok=True)
                continue
            for k, v in zip(data["keys"].numpy(), data["values"]):
                self.memory.setdefault(k.tobytes(), v)

    def lookup(self, x: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``compute(x)`` row by row, from the cache where a row was seen before; new rows are computed in one call."""
        rows = x.detach().cpu().contiguous().numpy()
        keys = [hashlib.sha1(r.tobytes()).digest() for r in rows]
        todo, seen = [], set()
        for i, k in enumerate(keys):
            if k not in self.memory and k not in seen:
                todo.append(i)
                seen.add(k)
        if todo:
            with torch.no_grad():
                fresh = compute(x[todo]).detach().cpu()
            self.computed += len(todo)
            for i, vec in zip(todo, fresh):
                self.memory[keys[i]] = vec.clone()
                self.pending.append(keys[i])
            if self.folder is not None and len(self.pending) >= self.flush_every:
                self.flush()
        return torch.stack([self.memory[k] for k in keys]).to(x.device)

    def flush(self) -> None:
        """Write the rows computed since the last flush as one new part."""
        if self.folder is None or not self.pending:
            return
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        keys = torch.from_numpy(np.frombuffer(b"".join(self.pending), dtype=np.uint8).reshape(-1, 20).copy())
        values = torch.stack([self.memory[k] for k in self.pending]).contiguous()
        name = f"part-{uuid.uuid4().hex}"
        tmp = self.folder / f"{name}.tmp"
        save_file({"keys": keys, "values": values}, str(tmp))
        os.replace(tmp, self.folder / f"{name}.safetensors")
        (self.folder / "identity.json").write_text(json.dumps(self.identity, default=str))
        self.pending = []


def frozen_caches(module: torch.nn.Module) -> list[FrozenCache]:
    """Every frozen-backbone cache inside ``module`` (its encoders')."""
    return [m.frozen_cache for m in module.modules() if getattr(m, "frozen_cache", None) is not None]
