"""The LightningModule of supervised training: loss and validation metrics around a MultimodalNet."""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import torch
from torch import nn

from ..config import TrainConfig
from ..data.batch import Batch
from ..errors import ConfigError
from ..model import ModelOutput, MultimodalNet
from ..objectives import (
    Mix,
    correct_class_scores,
    draw_mix,
    drop_modalities,
    modulate_gradients,
    modulation_coefficients,
    unimodal_probabilities,
)
from .base import NetModule


class MultimodalModule(NetModule):
    """The task loss of the net's head, plus the auxiliary and balancing losses ``train`` turns on."""

    def __init__(self, net: MultimodalNet, train_cfg: TrainConfig, aux_weight: float) -> None:
        super().__init__(net, train_cfg)
        self.aux_weight = aux_weight
        #: mixup, gradient modulation and per-modality losses need the embeddings, so training runs the net in parts
        self.by_parts = bool(train_cfg.mixup or train_cfg.gradient_modulation or train_cfg.modality_aux_weight or train_cfg.translation)
        if self.by_parts:
            _check_balance_options(net, train_cfg)
        #: per-modality linear classifiers for ``modality_aux_weight``: training only, not part of the saved net
        self.modality_heads = (
            nn.ModuleDict({m: nn.Linear(enc.dim, net.head.out_dim) for m, enc in net.encoders.items()})
            if train_cfg.modality_aux_weight else None
        )
        self.translators = _translators(net, train_cfg.translation)
        self.coefficients: dict[str, float] = {}

    def loss(self, batch: Batch, mix: Optional[Mix] = None) -> tuple[torch.Tensor, torch.Tensor]:
        head, masks, embeddings = self.net.head, batch.masks, None
        if self.training and self.by_parts:
            out, embeddings, masks = self.forward_parts(batch, mix)
        else:
            out = self.net(batch)
        loss = _loss(head.loss, out.output, batch.target, mix=mix)
        if self.aux_weight and out.aux:
            branch = partial(self.net.fusion.branch_loss, head)
            aux = [_loss(branch, pred, batch.target, masks[m], mix) for m, pred in out.aux.items() if masks[m].any()]
            if aux:
                loss = loss + self.aux_weight * torch.stack(aux).mean()
        if self.modality_heads is not None and embeddings is not None:
            aux = [_loss(head.loss, self.modality_heads[m](e), batch.target, masks[m], mix) for m, e in embeddings.items() if masks[m].any()]
            if aux:
                loss = loss + self.cfg.modality_aux_weight * torch.stack(aux).mean()
        if self.translators is not None and embeddings is not None:
            t = self.cfg.translation
            target, present = batch.inputs[t.target], masks[t.target]
            parts = [head.loss(embeddings[m], target, present & masks[m]) for m, head in self.translators.items()]
            loss = loss + t.weight * torch.stack(parts).mean()
        if embeddings is not None and self.modulating():
            self.coefficients = self.modulation(embeddings, masks, batch.target, mix)
        return loss, out.output

    def forward_parts(self, batch: Batch, mix: Optional[Mix] = None) -> tuple[ModelOutput, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The net's forward pass step by step: output, the (mixed) per-modality embeddings and the masks the fusion saw."""
        net = self.net
        embeddings, masks = net.fusion.encode(net.encoders, batch), batch.masks
        if mix is not None:
            embeddings, masks = mix.embeddings(embeddings), mix.masks
        fused = net.fusion(embeddings, masks)
        return ModelOutput(net.head(fused.fused), fused.weights, fused.aux), embeddings, masks

    def mixing(self) -> bool:
        mixup = self.cfg.mixup
        return mixup is not None and (mixup.until_epoch is None or self.current_epoch < mixup.until_epoch)

    def modulating(self) -> bool:
        gm = self.cfg.gradient_modulation
        return gm is not None and gm.start_epoch <= self.current_epoch and (gm.until_epoch is None or self.current_epoch < gm.until_epoch)

    def modulation(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], target: torch.Tensor, mix: Optional[Mix]) -> dict[str, float]:
        """OGM-GE coefficients of this step from each modality's share of the correct-class probability."""
        proba = unimodal_probabilities(self.net.fusion, self.net.head, {m: e.detach() for m, e in embeddings.items()}, masks)
        other, lam = (target[mix.partner], mix.lam) if mix is not None else (None, 1.0)
        scores = correct_class_scores(proba, masks, target, other, lam)
        return modulation_coefficients(scores, self.cfg.gradient_modulation.alpha)

    def on_after_backward(self) -> None:
        for m, k in self.coefficients.items():
            modulate_gradients(self.net.encoders[m].parameters(), k, self.cfg.gradient_modulation.noise)

    def on_train_epoch_start(self) -> None:
        self.net.head.epoch = self.current_epoch
        super().on_train_epoch_start()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.cfg.modality_dropout > 0:
            batch = batch.with_masks(drop_modalities(batch.masks, self.cfg.modality_dropout))
        self.coefficients = {}
        loss, _ = self.loss(batch, draw_mix(batch.masks, self.cfg.mixup.alpha) if self.mixing() else None)
        self.add_train_loss(loss, len(batch), batch_idx)
        for m, k in self.coefficients.items():
            self.log(f"modulation_{m}", k, on_step=False, on_epoch=True, batch_size=len(batch), sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, out = self.loss(batch)
        # best epoch and early stopping use a loss comparable across epochs: heads with an annealed penalty drop it
        varying = [m for m in self.net.modules() if getattr(m, "loss_varies", False)]
        if varying:
            for head in varying:
                head.comparable = True
            try:
                select, _ = self.loss(batch)
            finally:
                for head in varying:
                    head.comparable = False
        else:
            select = loss
        self.log_val(loss, select, len(batch))
        if self.net.head.task == "classification":
            acc = (self.net.head.predict(out) == batch.target).float().mean()
            self.log("val_accuracy", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch), sync_dist=True)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.net.head.epoch = int(checkpoint.get("epoch", 0))


def _loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    out: torch.Tensor,
    target: torch.Tensor,
    rows: Optional[torch.Tensor] = None,
    mix: Optional[Mix] = None,
) -> torch.Tensor:
    """``loss_fn`` on the given rows (all by default), against the mixed labels when ``mix`` is given."""
    if mix is not None:
        return mix.loss(loss_fn, out, target, rows)
    return loss_fn(out, target) if rows is None else loss_fn(out[rows], target[rows])


def _check_balance_options(net: MultimodalNet, cfg: TrainConfig) -> None:
    """Mixup, gradient modulation and per-modality losses work on per-modality embeddings; refuse what cannot."""
    fusion = type(net.fusion).__name__
    if not net.fusion.mixes_embeddings:
        raise ConfigError(
            f"train.mixup, train.gradient_modulation and train.modality_aux_weight work on per-modality embeddings, "
            f"but the fusion ({fusion}) fuses token sequences; turn them off or choose another fusion"
        )
    if cfg.gradient_modulation is not None:
        if net.head.task != "classification":
            raise ConfigError("train.gradient_modulation needs a classification task (it scores each modality's correct-class probability)")
        if len(net.encoders) < 2:
            raise ConfigError("train.gradient_modulation needs at least two modalities")


def _translators(net: MultimodalNet, cfg) -> Optional[nn.ModuleDict]:
    """Training-only translation heads (``train.translation``): each source embedding → the target's encoded values."""
    if cfg is None:
        return None
    from ..heads.translation import TranslationHead

    names = list(net.encoders)
    if cfg.target not in names:
        raise ConfigError(f"train.translation.target: {cfg.target!r} is not a modality ({names})")
    sources = cfg.sources or [m for m in names if m != cfg.target]
    unknown = [m for m in sources if m not in names or m == cfg.target]
    if unknown or not sources:
        raise ConfigError(f"train.translation.sources: {unknown or sources} must be other modalities of the model ({names})")
    width = net.encoders[cfg.target].info_dim if hasattr(net.encoders[cfg.target], "info_dim") else None
    if width is None:
        raise ConfigError(f"train.translation.target: the encoder of {cfg.target!r} does not say its input width; "
                          "translation targets are vector or counts modalities")
    return nn.ModuleDict({m: TranslationHead(net.encoders[m].dim, width, loss=cfg.loss) for m in sources})
