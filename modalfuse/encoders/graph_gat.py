"""GAT graph encoder (Veličković et al. 2018), the GraphDTA-GAT drug branch's layer type."""
from __future__ import annotations

from typing import Any, Literal

from torch import nn

from .base import ENCODERS
from .graph import GraphEncoder, pyg


@ENCODERS.register("graph_gat")
class GraphGAT(GraphEncoder):
    """Graph attention network: multi-head attention over neighbours (heads concatenated), max pooling."""

    def __init__(
        self, dim: int, info: dict[str, Any], hidden: int = 32, layers: int = 2, heads: int = 4,
        pool: Literal["sum", "mean", "max"] = "max", dropout: float = 0.2, batch_norm: bool = False,
    ) -> None:
        self.heads = heads
        super().__init__(dim, info, hidden, layers, pool, dropout, batch_norm)

    def make_conv(self, in_width: int, hidden: int) -> tuple[nn.Module, int]:
        return pyg().GATConv(in_width, hidden, heads=self.heads), hidden * self.heads
