"""What ``fit_net`` trains: a LightningModule around one ``net``, following one small protocol.

A :class:`NetModule` holds ``net`` (the weights that best-epoch selection keeps and the caller saves) and ``cfg``
(the TrainConfig its optimiser and schedule are built from). Its steps log three epoch means, reduced over ranks
with ``sync_dist``: ``train_loss``, ``val_loss`` and ``val_select`` (the selection loss that best weights and early
stopping compare across epochs). Training-only modules beside ``net`` are trained and checkpointed, never saved.
"""
from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn

from ..config import TrainConfig
from ..data.batch import Batch


class NetModule(L.LightningModule):
    #: after warm-up the learning rate decays along a cosine to 0 at the last step; False: it stays at ``cfg.lr``
    lr_decay = True
    #: whether a batch may be split across processes (data-parallel) without changing the loss
    shardable = True

    def __init__(self, net: nn.Module, train_cfg: TrainConfig) -> None:
        super().__init__()
        self.net = net
        self.cfg = train_cfg
        self.epoch_loss: list[torch.Tensor] = []
        self.epoch_rows = 0

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        """Batches move themselves: Lightning's generic walk through the dataclass costs about a millisecond a step."""
        return batch.to(device)

    def on_train_epoch_start(self) -> None:
        self.epoch_loss, self.epoch_rows = [], 0

    def add_train_loss(self, loss: torch.Tensor, rows: int, batch_idx: int) -> bool:
        """Count a step's loss into the epoch's mean, logged as ``train_loss`` on the epoch's last batch (True then).

        Logged once: Lightning's self.log costs ~0.5 ms a call; sync_dist reduces epoch values across ranks (sums
        of value x rows over sums of rows) and is free in one process."""
        self.epoch_loss.append(loss.detach() * rows)
        self.epoch_rows += rows
        last = self._trainer is not None and batch_idx + 1 >= self.trainer.num_training_batches
        if last:
            self.log("train_loss", torch.stack(self.epoch_loss).sum() / self.epoch_rows, on_step=False, on_epoch=True, batch_size=self.epoch_rows, sync_dist=True)
        return last

    def log_val(self, loss: torch.Tensor, select: torch.Tensor, rows: int) -> None:
        """``val_loss`` and ``val_select`` of one validation batch (means over the epoch's rows)."""
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=rows, sync_dist=True)
        self.log("val_select", select, on_step=False, on_epoch=True, batch_size=rows, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The epoch's running training loss, so that a run resumed mid-epoch logs the same mean."""
        losses = torch.stack(self.epoch_loss) if self.epoch_loss else torch.zeros(0)
        checkpoint["modalfuse_epoch"] = {"losses": losses, "rows": self.epoch_rows}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("modalfuse_epoch", {})
        self.epoch_loss, self.epoch_rows = list(state.get("losses", torch.zeros(0)).unbind()), int(state.get("rows", 0))

    def configure_optimizers(self):
        """AdamW on every trainable parameter (``net``'s first), stepped per batch by the warm-up schedule."""
        params = [p for p in self.parameters() if p.requires_grad]
        # foreach: one fused update over all parameter tensors; torch only picks it by default on GPUs
        opt = torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, foreach=True)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = self.cfg.warmup_epochs * total // self.cfg.max_epochs
        decay = self.lr_decay
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, warmup, total, decay))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def warmup_cosine(step: int, warmup: int, total: int, decay: bool = True) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total`` (or 1 without ``decay``)."""
    if step < warmup:
        return (step + 1) / warmup
    if not decay:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup, total - warmup) / max(1, total - warmup)))
