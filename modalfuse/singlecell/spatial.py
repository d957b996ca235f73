"""Map reference cell types onto spatial spots: a probabilistic cell-type mixture per spot (in the spirit of RCTD).

Each type's profile is the mean of its reference cells' expression, as fractions of their counts over the genes
the reference and the spots share. A spot's counts are modelled as Poisson with mean = spot depth × Σ_k w_k ·
gene factor · profile_k; the mixture weights w (≥ 0, summing to 1) are found by EM (multiplicative updates), and a
per-gene factor absorbs the platform difference between the dissociated reference and the tissue (as RCTD does),
estimated from all spots at once and alternated with the weights. Agreement with the reference's marker genes is
the correlation, over spots, of each type's weight with the spot's expression of that type's markers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from ..data.readers import as_frame
from ..kinds.sparse import csr_from_cells
from ..errors import DataError


@dataclass
class SpatialMap:
    """The result: ``weights`` (spots × types, rows sum to 1), ``coords`` (spots × [x, y]), the genes used,
    the reference profiles (types × genes) and the per-gene platform factors."""

    weights: pd.DataFrame
    coords: Optional[pd.DataFrame]
    genes: list[str]
    profiles: pd.DataFrame
    gene_factor: pd.Series
    spot_counts: Any  # CSR [spots, genes]

    @property
    def dominant(self) -> pd.Series:
        return self.weights.idxmax(axis=1).rename("dominant")

    def table(self) -> pd.DataFrame:
        """Weights with the dominant type and coordinates: one row per spot."""
        parts = [self.weights, self.dominant]
        if self.coords is not None:
            parts.insert(0, self.coords)
        return pd.concat(parts, axis=1)

    def markers(self, n: int = 10) -> dict[str, list[str]]:
        """Each type's ``n`` genes of highest log fold change of its profile over the mean of the other types (a
        pseudocount of 1e-4 of the counts keeps barely detected genes from topping the list)."""
        prof = self.profiles.to_numpy() + 1e-4
        out = {}
        for k, name in enumerate(self.profiles.index):
            rest = np.delete(prof, k, axis=0).mean(axis=0)
            lfc = np.log(prof[k] / rest)
            out[name] = [self.genes[i] for i in np.argsort(-lfc)[:n]]
        return out

    def marker_agreement(self, n: int = 10) -> pd.DataFrame:
        """Per type: Pearson r over spots between its weight and the spot's mean log1p-normalised marker expression."""
        x = self.spot_counts.toarray().astype(np.float64)
        x = np.log1p(x / np.maximum(x.sum(axis=1, keepdims=True), 1) * 1e4)
        col = {g: i for i, g in enumerate(self.genes)}
        rows = []
        for name, genes in self.markers(n).items():
            score = x[:, [col[g] for g in genes]].mean(axis=1)
            w = self.weights[name].to_numpy()
            r = float(np.corrcoef(w, score)[0, 1]) if w.std() > 0 and score.std() > 0 else float("nan")
            rows.append({"cell_type": name, "pearson_r": r, "mean_weight": float(w.mean()),
                         "spots_dominant": int((self.dominant == name).sum()), "markers": ", ".join(genes[:5])})
        return pd.DataFrame(rows).set_index("cell_type")

    def plot(self, path: str | Path, point_size: float = 6.0) -> Path:
        """One panel per cell type (weight over the coordinates) and one of the dominant type; saved to ``path``."""
        from ..report.plots import _save, pyplot

        plt = pyplot()
        if self.coords is None:
            raise DataError("the map has no spot coordinates to plot over")
        types = list(self.weights.columns)
        ncol = 4
        nrow = int(np.ceil((len(types) + 1) / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.4 * nrow), squeeze=False)
        x, y = self.coords.iloc[:, 0].to_numpy(), self.coords.iloc[:, 1].to_numpy()
        for ax, name in zip(axes.flat, types):
            sc = ax.scatter(x, y, c=self.weights[name], s=point_size, cmap="viridis", vmin=0, vmax=max(0.05, float(self.weights[name].max())))
            ax.set_title(name, fontsize=9)
            fig.colorbar(sc, ax=ax, fraction=0.046)
        ax = axes.flat[len(types)]
        dom = self.dominant
        cmap = plt.get_cmap("tab20")
        for k, name in enumerate(types):
            sel = (dom == name).to_numpy()
            if sel.any():
                ax.scatter(x[sel], y[sel], s=point_size, color=cmap(k % 20), label=name)
        ax.set_title("dominant type", fontsize=9)
        ax.legend(fontsize=5, markerscale=1.5, loc="best")
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.invert_yaxis() if ax.get_ylim()[0] < ax.get_ylim()[1] else None
            ax.grid(False)
        for ax in list(axes.flat)[len(types) + 1:]:
            ax.axis("off")
        return _save(fig, Path(path))


def _matrix(data: Any, modality: str, what: str) -> tuple[Any, list[str], list[str], pd.DataFrame]:
    frame, _, _ = as_frame(data)
    if modality not in frame.columns:
        raise DataError(f"{what}: no modality {modality!r} (columns: {list(frame.columns)[:10]})")
    cells = frame[modality]
    present = [c for c in cells if c is not None]
    if not present:
        raise DataError(f"{what}: modality {modality!r} has no cells")
    feats = present[0].features
    if feats.names is None:
        raise DataError(f"{what}: the counts carry no gene names; spots and reference are matched by gene name")
    keep = [i for i, c in enumerate(cells) if c is not None]
    return csr_from_cells([cells.iloc[i] for i in keep], feats.n), list(feats.names), [str(frame.index[i]) for i in keep], frame.iloc[keep]


def map_cell_types(spots: Any, reference: Any, cell_type: str | Sequence, *, spots_modality: str = "X",
                   reference_modality: str = "X", coords: Optional[pd.DataFrame] = None, min_cells: int = 5,
                   iterations: int = 300, platform_rounds: int = 3, exclude_genes: Sequence[str] = ()) -> SpatialMap:
    """The cell-type mixture of every spot.

    ``spots`` / ``reference``: anything ``read_cells`` takes (AnnData, a mapping name → matrix, ...); ``cell_type``: a
    column of the reference or the labels in its cell order; ``coords``: spots × (x, y) indexed by spot name;
    ``exclude_genes``: left out of the fit (e.g. markers kept aside to check the map on genes it never saw).
    """
    S, s_genes, s_names, _ = _matrix(spots, spots_modality, "spots")
    R, r_genes, r_names, r_frame = _matrix(reference, reference_modality, "reference")
    labels = r_frame[cell_type].astype(str).to_numpy() if isinstance(cell_type, str) else np.asarray(list(cell_type), dtype=str)
    if len(labels) != R.shape[0]:
        raise DataError(f"reference: {len(labels)} cell-type labels for {R.shape[0]} cells")
    r_pos = {g: i for i, g in enumerate(r_genes)}
    excluded = set(exclude_genes)
    shared = [g for g in s_genes if g in r_pos and g not in excluded]
    if len(shared) < 10:
        raise DataError(f"gene list mismatch: spots and reference share only {len(shared)} genes (need ≥ 10)")
    s_pos = {g: i for i, g in enumerate(s_genes)}
    S = S[:, [s_pos[g] for g in shared]].tocsr()
    R = R[:, [r_pos[g] for g in shared]].tocsr()
    types = [t for t in dict.fromkeys(labels) if (labels == t).sum() >= min_cells]
    if len(types) < 2:
        raise DataError(f"reference: fewer than 2 cell types with ≥ {min_cells} cells")
    totals = np.asarray(R.sum(axis=1)).ravel()
    frac = np.asarray((R.multiply(1.0 / np.maximum(totals, 1)[:, None])).todense())
    profiles = np.stack([frac[labels == t].mean(axis=0) for t in types])  # types × genes
    expressed = profiles.max(axis=0) > 0
    profiles, S = profiles[:, expressed], S[:, np.flatnonzero(expressed)]
    genes = [g for g, e in zip(shared, expressed) if e]
    profiles = profiles + 1e-7
    Y = S.toarray().astype(np.float64)
    depth = Y.sum(axis=1)
    empty = depth <= 0
    if empty.all():
        raise DataError("every spot has zero counts over the shared genes")
    factor = np.ones(len(genes))
    W = np.full((Y.shape[0], len(types)), 1.0 / len(types))
    for _ in range(max(1, platform_rounds)):
        W = _em_weights(Y, depth, profiles * factor, W, iterations)
        expected = depth[:, None] * (W @ (profiles * factor))
        factor = factor * np.clip(Y.sum(axis=0) / np.maximum(expected.sum(axis=0), 1e-12), 0.1, 10.0)
        factor = np.clip(factor / np.exp(np.log(factor).mean()), 0.01, 100.0)  # geometric mean 1: only ratios matter
    W = _em_weights(Y, depth, profiles * factor, W, iterations)
    W[empty] = np.nan
    weights = pd.DataFrame(W, index=pd.Index(s_names, name="spot"), columns=types)
    if coords is not None:
        coords = coords.copy()
        coords.index = [str(i) for i in coords.index]
        missing = [n for n in s_names if n not in coords.index]
        if missing:
            raise DataError(f"coords: {len(missing)} spots have no coordinates (first: {missing[:3]})")
        coords = coords.loc[s_names]
        coords.index.name = "spot"
    prof = pd.DataFrame(profiles, index=types, columns=genes)
    return SpatialMap(weights, coords, genes, prof, pd.Series(factor, index=genes, name="gene_factor"), S)


def _em_weights(Y: np.ndarray, depth: np.ndarray, profiles: np.ndarray, W: np.ndarray, iterations: int) -> np.ndarray:
    """EM for Poisson mixture weights with fixed (scaled) profiles: w ← w · Σ_g p_kg y_g / λ_g / Σ_g p_kg, rows sum to 1."""
    P = profiles / profiles.sum(axis=1, keepdims=True)  # each type's profile as gene fractions
    W = W.copy()
    for _ in range(iterations):
        lam = W @ P  # spots × genes, fractions
        W = W * ((Y / np.maximum(lam, 1e-12)) @ P.T) / np.maximum(depth[:, None], 1e-12)
        W = W / np.maximum(W.sum(axis=1, keepdims=True), 1e-12)
    return W
