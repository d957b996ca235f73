"""Shared body of the graph encoders: message-passing layers, pooling over nodes, projection to ``dim``."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Literal

import torch
from torch import nn

from ..data.entities import GraphSet
from .base import Encoder, EncoderInfo


def pyg():
    """PyTorch Geometric's layers, imported on first use (pure Python; no compiled extras needed)."""
    try:
        import torch_geometric.nn as gnn
    except ImportError:
        raise ImportError("graph encoders need PyTorch Geometric: pip install 'modalfuse[graph]'") from None
    return gnn


def pool_nodes(x: torch.Tensor, graph: torch.Tensor, n_graphs: int, how: str) -> torch.Tensor:
    """Sum, mean or max of node rows per graph (empty graphs give zeros)."""
    out = x.new_zeros(n_graphs, x.shape[1])
    if how == "max":
        return out.scatter_reduce(0, graph[:, None].expand_as(x), x, reduce="amax", include_self=False)
    out = out.index_add(0, graph, x)
    if how == "mean":
        out = out / torch.bincount(graph, minlength=n_graphs).clamp(min=1)[:, None].to(x.dtype)
    return out


class GraphEncoder(Encoder, metaclass=ABCMeta):
    """Subclasses build one convolution per layer; nodes are pooled per graph and projected to ``dim``."""

    needs = ('node_features',)

    def __init__(
        self, dim: int, info: EncoderInfo, hidden: int, layers: int, pool: Literal["sum", "mean", "max"],
        dropout: float, batch_norm: bool,
    ) -> None:
        super().__init__(dim, info)
        self.pool = pool
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        width = info["node_features"]
        for _ in range(layers):
            conv, width = self.make_conv(width, hidden)
            self.convs.append(conv)
            self.norms.append(nn.BatchNorm1d(width) if batch_norm else nn.Identity())
        self.out = nn.Sequential(nn.Linear(width, dim), nn.ReLU(), nn.Dropout(dropout))

    @abstractmethod
    def make_conv(self, in_width: int, hidden: int) -> tuple[nn.Module, int]:
        """One message-passing layer and its output width."""

    def nodes(self, graphs: GraphSet) -> torch.Tensor:
        x = graphs.x
        for conv, norm in zip(self.convs, self.norms):
            x = norm(torch.relu(conv(x, graphs.edge_index)))
        return x

    def forward(self, graphs: GraphSet) -> torch.Tensor:
        return self.out(pool_nodes(self.nodes(graphs), graphs.node_graph(), len(graphs), self.pool))

    def tokens(self, graphs: GraphSet) -> tuple[torch.Tensor, torch.Tensor]:
        """Atoms as tokens: [graphs, max atoms, dim] with a validity mask."""
        from torch_geometric.utils import to_dense_batch

        return to_dense_batch(self.out(self.nodes(graphs)), graphs.node_graph(), batch_size=len(graphs))
