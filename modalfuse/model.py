"""MultimodalNet: one encoder per modality → fusion → task head."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn

from .config import ModalityConfig, ModelConfig
from .data.batch import Batch
from .encoders import build_encoder
from .errors import ConfigError
from .fusion import FUSIONS, Fusion, FusionOutput, encode_embeddings
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
            m.name: build_encoder(m.encoder.name, m.encoder.dim, encoder_info[m.name], m.encoder.options, where=f"modalities.{m.name}.encoder",
                             kind=m.kind)
            for m in modalities
        }
        fusion_cls = FUSIONS.get(model.fusion.name)
        if fusion_cls.tasks is not None and task not in fusion_cls.tasks:
            raise ConfigError(f"model.fusion.name: {model.fusion.name!r} is for {'/'.join(fusion_cls.tasks)} tasks, not {task}")
        # a fusion may need its own head (evidential fusion: Dirichlet outputs; inverse-variance: a variance)
        kind, options = model.head_settings(fusion_cls.head_kinds.get(task))

        def head_on(in_dim: int | None) -> Head:
            return make_head(task, n_outputs, in_dim, model.head_hidden, model.dropout, kind, options)

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
        """Per-modality embeddings [B, d] as the fusion sees them (pooled ones for a token fusion); missing rows are zeros."""
        if self.fusion.mixes_embeddings:
            return self.fusion.encode(self.encoders, batch)
        return encode_embeddings(self.encoders, batch)

    def fused(self, batch: Batch, whole_batch: bool = False) -> FusionOutput:
        """The fusion's output (the head's input): the one forward protocol, ``Fusion.fuse``."""
        return self.fusion.fuse(self.encoders, batch, whole_batch)

    def forward(self, batch: Batch, whole_batch: bool = False) -> ModelOutput:
        fused = self.fused(batch, whole_batch)
        return ModelOutput(self.head(fused.fused), fused.weights, fused.aux)
