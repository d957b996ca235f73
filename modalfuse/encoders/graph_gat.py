"""GAT graph encoder (Veličković et al. 2018), the GraphDTA-GAT drug branch's layer type."""
from __future__ import annotations

from typing import Any, Literal

from torch import nn

from .base import ENCODERS
from .graph import GraphEncoder, pyg
from ..options import PosInt, Rate, Width


@ENCODERS.register("graph_gat")
class GraphGAT(GraphEncoder):
    """Graph attention network: multi-head attention over neighbours (heads concatenated), max pooling."""

    kinds = ("graph",)

    def __init__(
        self, dim: int, info: dict[str, Any], hidden: Width = 32, layers: PosInt = 2, heads: PosInt = 4,
        pool: Literal["sum", "mean", "max"] = "max", dropout: Rate = 0.2, batch_norm: bool = False,
    ) -> None:
        self.heads = heads
        super().__init__(dim, info, hidden, layers, pool, dropout, batch_norm)

    def make_conv(self, in_width: int, hidden: int) -> tuple[nn.Module, int]:
        return pyg().GATConv(in_width, hidden, heads=self.heads), hidden * self.heads
