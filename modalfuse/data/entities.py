"""De-duplicated modalities: rows point into a table of distinct values, so each is encoded once per batch.

In pair data (drug × protein, user × item, image × many captions) a few entities repeat across many
rows. ``Indexed`` stores each distinct value once plus one index per row; a batch carries only the
distinct values its rows use and, per row, the position of its value among them. The encoder runs on
the distinct values and the embeddings are gathered back to the rows, which gives the same loss and
gradients as encoding every row (up to per-sample randomness such as dropout masks and batch-norm
statistics, which then see each entity once).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import torch


@dataclass
class GraphSet:
    """Graphs stored back to back: node features, edges with global node ids, and offsets per graph."""

    x: torch.Tensor           # [nodes, features] float
    edge_index: torch.Tensor  # [2, edges] long, node ids into x
    node_ptr: torch.Tensor    # [graphs + 1] long
    edge_ptr: torch.Tensor    # [graphs + 1] long

    @classmethod
    def from_arrays(cls, graphs: list[dict[str, np.ndarray]], width: int) -> "GraphSet":
        """Stack graphs given as ``{"x": [n, f], "edge_index": [2, e]}`` (local node ids)."""
        nodes = np.array([0] + [g["x"].shape[0] for g in graphs], dtype=np.int64).cumsum()
        edges = np.array([0] + [g["edge_index"].shape[1] for g in graphs], dtype=np.int64).cumsum()
        x = np.concatenate([g["x"] for g in graphs]) if graphs else np.zeros((0, width), np.float32)
        ei = np.concatenate([g["edge_index"] + off for g, off in zip(graphs, nodes[:-1])], axis=1) if graphs else np.zeros((2, 0), np.int64)
        return cls(torch.from_numpy(x).float(), torch.from_numpy(ei).long(), torch.from_numpy(nodes), torch.from_numpy(edges))

    def __len__(self) -> int:
        return int(self.node_ptr.shape[0] - 1)

    @property
    def num_node_features(self) -> int:
        return int(self.x.shape[1])

    def node_graph(self) -> torch.Tensor:
        """The graph each node belongs to (PyG's ``batch`` vector)."""
        return torch.repeat_interleave(torch.arange(len(self), device=self.x.device), self.node_ptr.diff())

    def __getitem__(self, ids: torch.Tensor) -> "GraphSet":
        """The graphs ``ids`` (in that order), renumbered; vectorised, no per-graph Python loop."""
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.x.device).reshape(-1)
        n_nodes = self.node_ptr[ids + 1] - self.node_ptr[ids]
        n_edges = self.edge_ptr[ids + 1] - self.edge_ptr[ids]
        new_nodes = torch.cat([n_nodes.new_zeros(1), n_nodes.cumsum(0)])
        new_edges = torch.cat([n_edges.new_zeros(1), n_edges.cumsum(0)])
        node_src = _ranges(self.node_ptr[ids], n_nodes)
        edge_src = _ranges(self.edge_ptr[ids], n_edges)
        shift = torch.repeat_interleave(new_nodes[:-1] - self.node_ptr[ids], n_edges)
        return GraphSet(self.x[node_src], self.edge_index[:, edge_src] + shift, new_nodes, new_edges)

    def to(self, device: Union[torch.device, str]) -> "GraphSet":
        return GraphSet(self.x.to(device), self.edge_index.to(device), self.node_ptr.to(device), self.edge_ptr.to(device))


def _ranges(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + l)`` for each (s, l)."""
    total = int(lengths.sum())
    offsets = torch.repeat_interleave(starts - torch.cat([lengths.new_zeros(1), lengths.cumsum(0)[:-1]]), lengths)
    return torch.arange(total, device=starts.device) + offsets


Values = Union[torch.Tensor, GraphSet]


@dataclass
class Indexed:
    """Distinct values and, per row, the position of its value (-1 where the modality is missing)."""

    values: Values
    index: torch.Tensor  # [rows] long

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def rows(self, positions: torch.Tensor) -> "Indexed":
        """The rows ``positions``, keeping the whole value table (for splits)."""
        return Indexed(self.values, self.index[positions])

    def batch(self, positions: torch.Tensor) -> "Indexed":
        """The rows ``positions`` with only the distinct values they use, renumbered."""
        index = self.index[positions]
        present = index >= 0
        used, local = torch.unique(index[present], return_inverse=True)
        out = torch.full_like(index, -1)
        out[present] = local
        return Indexed(self.values[used], out)

    def to(self, device: Union[torch.device, str]) -> "Indexed":
        return Indexed(self.values.to(device), self.index.to(device))

    def dense(self) -> torch.Tensor:
        """Every row's value as a plain tensor (missing rows get the first value; their masks say so)."""
        if isinstance(self.values, GraphSet):
            raise TypeError("graph values cannot be laid out row by row; this operation needs tensor modalities")
        return self.values[self.index.clamp(min=0)]
