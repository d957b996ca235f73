"""MultimodalNet: one encoder per modality → fusion → task head."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn

from .config import ModalityConfig, ModelConfig
from .data.batch import Batch
from .data.entities import Indexed
from .encoders import build_encoder
from .fusion import FUSIONS, Fusion
from .heads import Head, make_head


@dataclass
class ModelOutput:
    output: torch.Tensor
    weights: Optional[torch.Tensor] = None
    aux: dict[str, torch.Tensor] = field(default_factory=dict)

    def uncertainty(self, head: Head) -> Optional[torch.Tensor]:
        """The head's per-sample uncertainty (Dirichlet mass, predicted variance), where it has one."""
        return head.uncertainty(self.output) if hasattr(head, "uncertainty") else None


class MultimodalNet(nn.Module):
    """Encoders run only on the samples where their modality is present; fusion sees the masks."""

    def __init__(self, encoders: dict[str, nn.Module], fusion: Fusion, head: Head) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = fusion
        self.head = head
        if getattr(fusion, "drives_encoders", False):
            fusion.attach(self.encoders)

    @classmethod
    def build(
        cls,
        modalities: list[ModalityConfig],
        model: ModelConfig,
        encoder_info: dict[str, dict[str, Any]],
        task: str,
        n_outputs: int,
    ) -> "MultimodalNet":
        encoders = {
            m.name: build_encoder(m.encoder.name, m.encoder.dim, encoder_info[m.name], m.encoder.options, where=f"modalities.{m.name}.encoder")
            for m in modalities
        }
        fusion_cls = FUSIONS.get(model.fusion.name)
        kind = fusion_cls.head_kinds.get(task, model.head)

        def head_on(in_dim: int | None) -> Head:
            return make_head(task, n_outputs, in_dim, model.head_hidden, model.dropout, kind, model.gaussian_beta, model.margin_l2)

        predicts = fusion_cls.predicts  # late fusion predicts: its width is the head's output
        head = head_on(None if predicts else model.fusion.dim)
        fusion = FUSIONS.create(
            model.fusion.name, model.fusion.options, "model.fusion",
            in_dims={name: encoder.dim for name, encoder in encoders.items()},
            out_dim=head.out_dim if predicts else model.fusion.dim,
            dropout=model.dropout,
            **({"task": task} if fusion_cls.needs_task else {}),
        )
        if not predicts and fusion.out_dim != model.fusion.dim:  # a fusion that sets its own width (early, layers: 0)
            head = head_on(fusion.out_dim)
        return cls(encoders, fusion, head)

    def embed(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Embeddings [B, d] per modality; rows of missing samples are zeros and flagged by the masks."""
        out = {}
        for name, encoder in self.encoders.items():
            x, mask = batch.inputs[name], batch.masks[name]
            if isinstance(x, Indexed):
                out[name] = _gather(encoder(x.values) if len(x.values) else None, x.index, mask, (encoder.dim,))
                continue
            idx = mask.nonzero(as_tuple=True)[0]
            emb = torch.zeros(mask.shape[0], encoder.dim, device=mask.device)
            if idx.numel():
                emb = emb.index_copy(0, idx, encoder(x[idx]).to(emb.dtype))
            out[name] = emb
        return out

    def tokens(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Token sequences [B, T, d] and validity [B, T] per modality (all False for missing samples)."""
        out = {}
        for name, encoder in self.encoders.items():
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

    def forward(self, batch: Batch) -> ModelOutput:
        if getattr(self.fusion, "uses_tokens", False):
            fused = self.fusion(self.tokens(batch), batch.masks)
        elif getattr(self.fusion, "drives_encoders", False):
            inputs = {k: v.dense() if isinstance(v, Indexed) else v for k, v in batch.inputs.items()}
            fused = self.fusion(self.fusion.encode(self.encoders, inputs, batch.masks), batch.masks)
        else:
            fused = self.fusion(self.embed(batch), batch.masks)
        return ModelOutput(self.head(fused.fused), fused.weights, fused.aux)


def _gather(per_value: Optional[torch.Tensor], index: torch.Tensor, mask: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Rows' outputs from their distinct values' outputs; rows of missing samples are zeros (False)."""
    if per_value is None:
        return torch.zeros(mask.shape[0], *shape, device=mask.device)
    rows = per_value[index.clamp(min=0)]
    keep = mask.reshape(-1, *([1] * (rows.dim() - 1)))
    return rows & keep if rows.dtype == torch.bool else rows * keep.to(rows.dtype)
