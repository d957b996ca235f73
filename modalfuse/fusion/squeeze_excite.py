"""Multimodal squeeze-and-excitation (MMTM, Joze et al. 2020).

Squeeze each modality to a summary, learn a joint representation of all summaries, and
rescale each modality's channels by a gate 2·σ(W_m z). Applied to the final embeddings, and
optionally (``depths``) between the intermediate feature maps of CNN encoders, as the original
inserts it at several depths.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..data.batch import Batch
from .base import FUSIONS, Fusion, FusionOutput, dense_inputs, encode_embeddings
from ..options import NonNegInt, PosInt


class MMTM(nn.Module):
    """One squeeze-excite exchange over modalities with ``channels[m]`` channels each."""

    def __init__(self, channels: dict[str, int], reduction: int = 4) -> None:
        super().__init__()
        self.names = list(channels)
        joint = max(4, sum(channels.values()) // reduction)
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(c)) for m, c in channels.items()})
        self.squeeze = nn.Sequential(nn.Linear(sum(channels.values()), joint), nn.ReLU())
        self.excite = nn.ModuleDict({m: nn.Linear(joint, c) for m, c in channels.items()})

    def gates(self, summaries: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """summaries[m]: [B, C_m] (rows of missing samples are ignored) → gates [B, C_m]."""
        filled = [torch.where(masks[m][:, None], summaries[m], self.missing[m].expand_as(summaries[m])) for m in self.names]
        z = self.squeeze(torch.cat(filled, dim=1))
        return {m: 2 * torch.sigmoid(self.excite[m](z)) for m in self.names}


@FUSIONS.register("squeeze_excite")
class SqueezeExciteFusion(Fusion):
    """MMTM-style gating: joint squeeze of all modalities, per-modality channel gates, then concat."""

    def __init__(
        self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, reduction: PosInt = 4,
        depths: Optional[list[NonNegInt]] = None,
    ) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.mmtm = MMTM(in_dims, reduction)
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m, d in in_dims.items()})
        self.proj = nn.Sequential(nn.Linear(sum(in_dims.values()), out_dim), nn.GELU(), nn.Dropout(dropout))
        self.depths = sorted(depths or [])
        self.reduction = reduction
        self.stage_mmtm: Optional[nn.ModuleDict] = None

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        gates = self.mmtm.gates(embeddings, masks)
        parts = [
            torch.where(masks[m][:, None], embeddings[m] * gates[m], self.missing[m].expand_as(embeddings[m]))
            for m in self.modalities
        ]
        return FusionOutput(self.proj(torch.cat(parts, dim=1)))

    def attach(self, encoders: nn.ModuleDict) -> None:
        """Create the feature-map MMTM blocks once the (CNN) encoders are known (only with ``depths``)."""
        if not self.depths:
            return
        cnns = {m: e.net for m, e in encoders.items() if hasattr(e, "prepare") and hasattr(e.net, "blocks")}
        if len(cnns) < 2:
            from ..errors import ConfigError

            raise ConfigError("model.fusion.options.depths: feature-map squeeze-excite needs at least two CNN encoders (image_cnn, audio_cnn)")
        self.cnn_names = list(cnns)
        stages = {}
        for depth in self.depths:
            channels = {m: net.blocks[depth].body[0].out_channels for m, net in cnns.items() if depth < len(net.blocks)}
            stages[str(depth)] = MMTM(channels, self.reduction)
        self.stage_mmtm = nn.ModuleDict(stages)

    def encode(self, encoders: nn.ModuleDict, batch: Batch, whole_batch: bool = False) -> dict[str, torch.Tensor]:
        """With ``depths``: run CNN encoders block by block with MMTM between them; other encoders run as usual."""
        if not self.depths:
            return super().encode(encoders, batch, whole_batch)
        masks = batch.masks
        inputs = {m: x for m, x in dense_inputs(batch, self.cnn_names).items()}
        b = next(iter(masks.values())).shape[0]
        idx = {m: masks[m].nonzero(as_tuple=True)[0] for m in encoders}
        # a modality absent from the whole batch skips its CNN; the gates see its learned stand-in
        maps = {m: encoders[m].net.stem(encoders[m].prepare(inputs[m][idx[m]])) for m in self.cnn_names if idx[m].numel()}
        n_blocks = max(len(encoders[m].net.blocks) for m in self.cnn_names)
        for i in range(n_blocks):
            for m in maps:
                if i < len(encoders[m].net.blocks):
                    maps[m] = encoders[m].net.blocks[i](maps[m])
            if str(i) in self.stage_mmtm:
                block = self.stage_mmtm[str(i)]
                summaries = {}
                for m in block.names:
                    channels = block.excite[m].out_features
                    full = torch.zeros(b, channels, device=masks[m].device)
                    summaries[m] = full.index_copy(0, idx[m], maps[m].mean(dim=(2, 3))) if m in maps else full
                gates = block.gates(summaries, masks)
                for m in block.names:
                    if m in maps:
                        maps[m] = maps[m] * gates[m][idx[m]][:, :, None, None]
        out = {}
        for m, enc in encoders.items():
            if m not in self.cnn_names:
                out.update(encode_embeddings({m: enc}, batch))
                continue
            emb = torch.zeros(b, enc.dim, device=masks[m].device)
            if m in maps:
                emb = emb.index_copy(0, idx[m], enc.net.out(maps[m].mean(dim=(2, 3))).to(emb.dtype))
            out[m] = emb
        return out
