"""GCN graph encoder (Kipf & Welling 2017), the GraphDTA-GCN drug branch's layer type."""
from __future__ import annotations

from typing import Any, Literal

from torch import nn

from .base import ENCODERS
from .graph import GraphEncoder, pyg
from ..options import PosInt, Rate, Width


@ENCODERS.register("graph_gcn")
class GraphGCN(GraphEncoder):
    """Graph convolutional network: normalised neighbour averaging with self-loops, max pooling over atoms."""

    kinds = ("graph",)

    def __init__(
        self, dim: int, info: dict[str, Any], hidden: Width = 128, layers: PosInt = 3, pool: Literal["sum", "mean", "max"] = "max",
        dropout: Rate = 0.2, batch_norm: bool = False,
    ) -> None:
        super().__init__(dim, info, hidden, layers, pool, dropout, batch_norm)

    def make_conv(self, in_width: int, hidden: int) -> tuple[nn.Module, int]:
        return pyg().GCNConv(in_width, hidden), hidden
