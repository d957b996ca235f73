"""GIN graph encoder (Xu et al. 2019), sized as GraphDTA's drug branch by default."""
from __future__ import annotations

from typing import Any, Literal

from torch import nn

from .base import ENCODERS
from .graph import GraphEncoder, pyg
from ..options import PosInt, Rate, Width


@ENCODERS.register("graph_gin")
class GraphGIN(GraphEncoder):
    """Graph isomorphism network: sum aggregation + MLP per layer, batch norm, sum pooling over atoms."""

    kinds = ("graph",)

    def __init__(
        self, dim: int, info: dict[str, Any], hidden: Width = 32, layers: PosInt = 5, pool: Literal["sum", "mean", "max"] = "sum",
        dropout: Rate = 0.2, batch_norm: bool = True,
    ) -> None:
        super().__init__(dim, info, hidden, layers, pool, dropout, batch_norm)

    def make_conv(self, in_width: int, hidden: int) -> tuple[nn.Module, int]:
        return pyg().GINConv(nn.Sequential(nn.Linear(in_width, hidden), nn.ReLU(), nn.Linear(hidden, hidden))), hidden
