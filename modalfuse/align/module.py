"""The LightningModule of contrastive alignment: InfoNCE over modality pairs around an AlignNet, trained by ``fit_net``."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AlignConfig, TrainConfig
from ..data.batch import Batch
from ..objectives import drop_modalities
from ..objectives.contrastive import multi_info_nce, normalise
from ..train.base import NetModule


class AlignModule(NetModule):
    """Symmetric InfoNCE between the shared-space embeddings (same-class items as extra positives with
    ``align.label_weight``), plus ``align.class_weight`` times a cross-entropy against class directions.

    The class directions (``classifier``) are shared by all modalities and trained and checkpointed with the net,
    but are no part of it: the saved model holds ``net`` only. ``train_labels`` / ``val_labels`` are the integer
    class codes of the training / validation rows (negative: no classifier target), or None.
    """

    #: the learning rate stays at train.lr after warm-up, as alignment has always trained (no cosine decay)
    lr_decay = False
    #: InfoNCE's negatives are the rest of the batch: a batch split across processes would change the loss
    shardable = False

    def __init__(self, net: nn.Module, align: AlignConfig, train_cfg: TrainConfig,
                 train_labels: Optional[torch.Tensor] = None, val_labels: Optional[torch.Tensor] = None) -> None:
        super().__init__(net, train_cfg)
        self.align = align
        self.train_labels, self.val_labels = train_labels, val_labels
        with_classes = align.class_weight > 0 and train_labels is not None
        self.classifier = nn.Linear(net.dim, int(train_labels.max()) + 1, bias=False) if with_classes else None
        self.init_rng = torch.get_rng_state()

    def setup(self, stage: str) -> None:
        """Training draws (dropout) continue the torch RNG stream of the initial weights rather than fit_net's fresh
        seed: each seed gives the results alignment has always given (docs/results). A resumed run restores its
        checkpoint's RNG state after this hook."""
        torch.set_rng_state(self.init_rng)

    def loss(self, batch: Batch, labels: Optional[torch.Tensor]) -> torch.Tensor:
        """The alignment loss of one batch; ``labels`` are the codes of all rows of its table (indexed by ``batch.index``)."""
        labels = None if labels is None else labels[batch.index.cpu()].to(batch.index.device)
        emb = self.net.embed(batch)
        weight = self.align.label_weight if labels is not None else 0.0
        temperature = self.net.temperature()
        loss = multi_info_nce(emb, batch.masks, temperature, self.align.pairs, labels, weight)
        if self.classifier is not None and labels is not None:
            directions = normalise(self.classifier.weight)
            terms = [F.cross_entropy(emb[m][keep] @ directions.T / temperature, labels[keep])
                     for m, mask in batch.masks.items() if (keep := mask & (labels >= 0)).any()]
            if terms:
                loss = loss + self.align.class_weight * torch.stack(terms).mean()
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.cfg.modality_dropout > 0:  # a hidden modality drops out of its pairs' loss for that row
            batch = batch.with_masks(drop_modalities(batch.masks, self.cfg.modality_dropout))
        loss = self.loss(batch, self.train_labels)
        if self.add_train_loss(loss, len(batch), batch_idx):
            self.log("temperature", self.net.temperature().detach(), on_step=False, on_epoch=True, batch_size=1, sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss = self.loss(batch, self.val_labels)
        self.log_val(loss, loss, len(batch))
