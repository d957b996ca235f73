"""The LightningModule: loss, optimisation and validation metrics around a MultimodalNet."""
from __future__ import annotations

import lightning as L
import torch

from ..config import TrainConfig
from ..data.batch import Batch
from ..model import MultimodalNet
from ..objectives import drop_modalities


class MultimodalModule(L.LightningModule):
    def __init__(self, net: MultimodalNet, train_cfg: TrainConfig, aux_weight: float) -> None:
        super().__init__()
        self.net = net
        self.cfg = train_cfg
        self.aux_weight = aux_weight

    def loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(batch)
        head = self.net.head
        loss = head.loss(out.output, batch.target)
        if self.aux_weight and out.aux:
            fusion = self.net.fusion
            aux = [
                fusion.branch_loss(head, pred[batch.masks[m]], batch.target[batch.masks[m]])
                for m, pred in out.aux.items() if batch.masks[m].any()
            ]
            if aux:
                loss = loss + self.aux_weight * torch.stack(aux).mean()
        return loss, out.output

    def on_train_epoch_start(self) -> None:
        self.net.head.epoch = self.current_epoch

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.cfg.modality_dropout > 0:
            batch = batch.with_masks(drop_modalities(batch.masks, self.cfg.modality_dropout))
        loss, _ = self.loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, out = self.loss(batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch))
        if self.net.head.task == "classification":
            acc = (self.net.head.predict(out) == batch.target).float().mean()
            self.log("val_accuracy", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch))

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.cfg.max_epochs)
        return {"optimizer": opt, "lr_scheduler": sched}
