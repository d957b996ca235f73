"""Fusion contract and registry: the one forward protocol every caller goes through.

``Fusion.fuse(encoders, batch)`` is the whole fused forward pass, in two steps that subclasses
override independently (as PyG's ``propagate`` drives ``message`` / ``aggregate``):

- ``encode(encoders, batch)``: the per-modality parts the fusion combines, chosen by the class's
  ``consumes``: pooled embeddings [B, d_m] (the default) or token sequences ([B, T, d], validity
  [B, T]). A fusion that interleaves with the encoders (feature-map squeeze-excite) overrides it.
- ``forward(parts, masks)``: combine the parts into a ``FusionOutput``.

Training (mixup, gradient modulation, per-modality losses), prediction, the fused embedding,
probes, serving and ONNX export all call these two steps and nothing else. A missing modality
never contributes: its embedding row holds zeros that fusions must ignore (replace by a learned
token, or mask out). De-duplicated (``Indexed``) inputs are resolved here, once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional, Union

import torch
from torch import nn

from ..data.batch import Batch
from ..data.entities import Indexed
from ..registry import Registry

Parts = Union[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class FusionOutput:
    fused: torch.Tensor
    #: per-sample modality weights [B, M] in the fusion's modality order, where it has them
    weights: Optional[torch.Tensor] = None
    #: per-modality predictions in task-output space, for auxiliary losses
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


class Fusion(nn.Module):
    """Base class. ``predicts`` is True when ``fused`` is already in task-output space (late fusion)."""

    predicts: ClassVar[bool] = False
    #: what ``forward`` combines: per-modality pooled embeddings or token sequences
    consumes: ClassVar[Literal["embeddings", "tokens"]] = "embeddings"
    #: auxiliary-loss weight used when the config leaves ``model.aux_weight`` unset
    default_aux_weight: ClassVar[float] = 0.0
    #: task → head kind this fusion needs ("evidential", "gaussian"); others take the configured head
    head_kinds: ClassVar[dict[str, str]] = {}
    #: tasks the fusion can serve (``None``: any); a config asking for another is refused
    tasks: ClassVar[Optional[tuple[str, ...]]] = None
    #: whether the constructor takes the task ("classification" / "regression")
    needs_task: ClassVar[bool] = False

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.modalities = list(in_dims)
        self.in_dims = dict(in_dims)
        self.out_dim = out_dim

    # -- the protocol -------------------------------------------------------------------------
    def attach(self, encoders: nn.ModuleDict) -> None:
        """Called once the encoders exist (e.g. to build blocks sized by their feature maps); default: nothing."""

    @property
    def mixes_embeddings(self) -> bool:
        """Whether ``encode`` yields one embedding per modality, so mixup and per-modality objectives apply."""
        return self.consumes == "embeddings"

    def encode(self, encoders: nn.ModuleDict, batch: Batch, whole_batch: bool = False) -> Parts:
        """The per-modality parts ``forward`` combines.

        ``whole_batch`` runs each encoder on every row and zeroes missing rows afterwards instead of
        selecting present rows first: the same values in eval mode, free of data-dependent shapes (ONNX).
        """
        if self.consumes == "tokens":
            return encode_tokens(encoders, batch)
        return encode_embeddings(encoders, batch, whole_batch)

    def fuse(self, encoders: nn.ModuleDict, batch: Batch, whole_batch: bool = False) -> FusionOutput:
        """The fused forward pass: ``forward(encode(...), masks)``."""
        return self(self.encode(encoders, batch, whole_batch), batch.masks)

    # -- helpers for subclasses ---------------------------------------------------------------
    def branch_loss(self, head: nn.Module, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of one modality's auxiliary prediction (rows where the modality is present)."""
        return head.loss(out, target)

    def stack_masks(self, masks: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, M] float presence in the fusion's modality order."""
        return torch.stack([masks[m] for m in self.modalities], dim=1).float()


FUSIONS: Registry[Fusion] = Registry("fusion", fixed=("in_dims", "out_dim", "dropout", "task"))


def masked_mean(values: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """Mean over present modalities: values [B, M, D], presence [B, M] → [B, D]."""
    weights = presence / presence.sum(dim=1, keepdim=True).clamp(min=1.0)
    return torch.einsum("bm,bmd->bd", weights, values)


def dense_inputs(batch: Batch, names: Optional[list[str]] = None) -> dict[str, torch.Tensor]:
    """The inputs of ``names`` (default all) laid out row by row (``Indexed`` values gathered back to their rows)."""
    return {k: v.dense() if isinstance(v, Indexed) else v for k, v in batch.inputs.items() if names is None or k in names}


def encode_embeddings(encoders: nn.ModuleDict, batch: Batch, whole_batch: bool = False) -> dict[str, torch.Tensor]:
    """Embeddings [B, d] per modality; encoders run only on present rows, missing rows are zeros."""
    out = {}
    for name, encoder in encoders.items():
        x, mask = batch.inputs[name], batch.masks[name]
        if isinstance(x, Indexed):
            out[name] = _gather(encoder(x.values) if len(x.values) else None, x.index, mask, (encoder.dim,))
        elif whole_batch:
            emb = encoder(x)
            out[name] = emb * mask.to(emb.dtype)[:, None]
        else:
            idx = mask.nonzero(as_tuple=True)[0]
            emb = torch.zeros(mask.shape[0], encoder.dim, device=mask.device)
            if idx.numel():
                emb = emb.index_copy(0, idx, encoder(x[idx]).to(emb.dtype))
            out[name] = emb
    return out


def encode_tokens(encoders: nn.ModuleDict, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Token sequences [B, T, d] and validity [B, T] per modality (all False for missing samples)."""
    out = {}
    for name, encoder in encoders.items():
        x, mask = batch.inputs[name], batch.masks[name]
        if isinstance(x, Indexed):
            toks, valid = encoder.tokens(x.values)
            out[name] = (_gather(toks, x.index, mask, toks.shape[1:]), _gather(valid, x.index, mask, valid.shape[1:]))
            continue
        idx = mask.nonzero(as_tuple=True)[0]
        probe = x[idx] if idx.numel() else x[:1]
        toks, valid = encoder.tokens(probe)
        full = toks.new_zeros(mask.shape[0], *toks.shape[1:])
        full_valid = torch.zeros(mask.shape[0], toks.shape[1], dtype=torch.bool, device=mask.device)
        if idx.numel():
            full, full_valid = full.index_copy(0, idx, toks), full_valid.index_copy(0, idx, valid)
        out[name] = (full, full_valid)
    return out


def _gather(per_value: Optional[torch.Tensor], index: torch.Tensor, mask: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Rows' outputs from their distinct values' outputs; rows of missing samples are zeros (False)."""
    if per_value is None:
        return torch.zeros(mask.shape[0], *shape, device=mask.device)
    rows = per_value[index.clamp(min=0)]
    keep = mask.reshape(-1, *([1] * (rows.dim() - 1)))
    return rows & keep if rows.dtype == torch.bool else rows * keep.to(rows.dtype)
