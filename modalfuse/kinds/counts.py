"""Count data (scRNA UMIs, surface-protein ADT counts, ATAC peaks or bins): one cell's sparse counts per row.

Decoding checks the counts (finite, non-negative, whole numbers unless ``integer: false``, at least ``min_counts``
in the cell) and keeps them sparse. Fitting on the training cells records the feature names (genes are matched by
name at predict time), picks features (highly variable by normalised dispersion for expression, most often detected
for peaks) and, for TF-IDF, the inverse document frequencies and optionally an LSI basis. Encoding gives a sparse
row: library-size normalised log1p, raw counts, binary or TF-IDF values, then a one-hot batch covariate when
``batch`` names a column. Rows stay sparse until a batch is built (``SparseRows``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
from pydantic import Field

from .sparse import CellCounts, FeatureList, SparseRows, csr_from_cells
from ..errors import DataError, RequestError
from .base import KINDS, KindOptions, Preprocessor, is_missing


class CountsOptions(KindOptions):
    transform: Literal["log1p", "raw", "binary", "tfidf"] = Field(
        "log1p", description="log1p: counts / library size × target_sum, then log1p; raw: counts; binary: detected or "
        "not (ATAC peaks); tfidf: term frequency × inverse document frequency, log1p (ATAC, with lsi_components for LSI).")
    target_sum: float = Field(1e4, gt=0, description="Library size every cell is scaled to before log1p.")
    n_features: int = Field(2000, ge=0, description="Features kept, picked on the training cells; 0 keeps all.")
    select: Literal["auto", "variance", "frequency"] = Field(
        "auto", description="variance: highly variable (normalised dispersion in mean bins); frequency: most often "
        "detected; auto: frequency for binary/tfidf, variance otherwise.")
    lsi_components: int = Field(0, ge=0, le=1000, description="With tfidf: project onto this many LSI components (SVD "
                                "of the training cells' TF-IDF, the first, depth-driven component dropped); 0: off.")
    integer: bool = Field(True, description="Refuse non-integer values (counts were normalised already?); false accepts them.")
    min_counts: float = Field(1, ge=0, description="A cell with fewer total counts is an empty cell (a bad row).")
    batch: Optional[str] = Field(None, description="A column holding each cell's batch/library, appended one-hot (a covariate).")


@KINDS.register("counts")
class CountsPreprocessor(Preprocessor):
    Options = CountsOptions
    default_encoder = "counts_mlp"
    json_parts = True

    def setup(self) -> None:
        if self.config.dedupe is None:
            self.config.dedupe = False  # each cell's counts are its own; rows are never shared
        if self.options.batch and self.options.batch not in self.config.columns:
            self.config.columns = [*self.config.columns, self.options.batch]
        self.input_names: Optional[list[str]] = None
        self.n_input = 0
        self.selected: list[int] = []
        self.idf: list[float] = []
        self.lsi: list[list[float]] = []
        self.batches: list[str] = []
        self.dim = 0
        self._maps: dict[int, tuple[FeatureList, np.ndarray]] = {}

    @property
    def selected_names(self) -> Optional[list[str]]:
        return [self.input_names[i] for i in self.selected] if self.input_names is not None else None

    # -- decode -----------------------------------------------------------------------------
    def decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> Any | None:
        if is_missing_cell(cells[0]):
            return None
        return self._decode(cells, base_dir)

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> tuple[CellCounts, Optional[str]]:
        cell = as_cell_counts(cells[0])
        values = cell.values
        if not np.isfinite(values).all():
            raise DataError("the counts hold NaN or infinite values")
        if (values < 0).any():
            raise DataError(f"negative count {float(values[values < 0][0])!r}{_at(cell, values < 0)}; counts must be ≥ 0")
        if self.options.integer:
            frac = np.abs(values - np.round(values)) > 1e-6
            if frac.any():
                raise DataError(f"non-integer count {float(values[frac][0]):g}{_at(cell, frac)}: expected raw counts (UMIs); "
                                "for already-normalised values set options.integer: false and transform: binary or log1p")
        if cell.total < max(self.options.min_counts, 1e-12):
            raise DataError(f"empty cell: {cell.total:g} counts over {cell.features.n} features (min_counts {self.options.min_counts:g})")
        batch = None
        if self.options.batch:
            raw = cells[-1]
            batch = None if is_missing(raw) else str(raw)
        return cell, batch

    # -- fit --------------------------------------------------------------------------------
    def fit(self, values: list[tuple[CellCounts, Optional[str]]]) -> None:
        if values:
            first = values[0][0].features
            for cell, _ in values:
                if cell.features is not first and cell.features.names != first.names:
                    raise DataError("training cells carry different feature lists; give one modality one feature list")
            self.input_names = list(first.names) if first.names is not None else None
            self.n_input = first.n
            matrix = csr_from_cells([c for c, _ in values], first.n)
            self.selected = select_features(matrix, self.options.n_features, self._select(), self.options.target_sum)
            sub = matrix[:, self.selected]
            if self.options.transform == "tfidf":
                df = np.asarray((sub > 0).sum(axis=0)).ravel()
                self.idf = np.log1p(sub.shape[0] / (1.0 + df)).tolist()
            self._maps = {}
            if self.options.transform == "tfidf" and self.options.lsi_components:
                self.lsi = fit_lsi(self._transform(sub, np.asarray(matrix.sum(axis=1)).ravel()), self.options.lsi_components)
            self.batches = sorted({b for _, b in values if b is not None}) if self.options.batch else []
            width = len(self.lsi[0]) if self.lsi else len(self.selected)
            self.dim = width + len(self.batches)
        super().fit(values)

    def _select(self) -> str:
        if self.options.select != "auto":
            return self.options.select
        return "frequency" if self.options.transform in ("binary", "tfidf") else "variance"

    # -- encode -----------------------------------------------------------------------------
    def _column_map(self, features: FeatureList) -> np.ndarray:
        """Per input position of ``features``: the output column (-1: not kept); genes matched by name."""
        hit = self._maps.get(id(features))
        if hit is not None and hit[0] is features:
            return hit[1]
        if self.input_names is not None and features.names is not None:
            pos = features.position()
            names = self.selected_names
            absent = [n for n in names if n not in pos]
            if absent:
                raise DataError(f"gene list mismatch: {len(absent)} of the {len(names)} features the model was trained on are "
                                f"absent from this input (first: {', '.join(absent[:5])}); give the same feature names")
            cols = np.full(features.n, -1, dtype=np.int64)
            cols[[pos[n] for n in names]] = np.arange(len(names))
        else:
            if features.n != self.n_input:
                raise DataError(f"expected {self.n_input} features per cell, got {features.n}")
            cols = np.full(features.n, -1, dtype=np.int64)
            cols[self.selected] = np.arange(len(self.selected))
        self._maps[id(features)] = (features, cols)
        return cols

    def _transform(self, sub, totals: np.ndarray):
        """Kept counts [cells, kept] (CSR) → transformed CSR, using each cell's library size over all features."""
        from scipy import sparse

        sub = sparse.csr_matrix(sub, dtype=np.float32, copy=True)
        t = self.options.transform
        if t == "log1p":
            scale = self.options.target_sum / np.maximum(totals, 1e-12)
            sub = sparse.diags(scale.astype(np.float32)) @ sub
            sub.data = np.log1p(sub.data)
        elif t == "binary":
            sub.data = (sub.data > 0).astype(np.float32)
        elif t == "tfidf":
            sub = sparse.diags((1.0 / np.maximum(totals, 1e-12)).astype(np.float32)) @ sub @ sparse.diags(np.asarray(self.idf, np.float32))
            sub.data = np.log1p(sub.data * self.options.target_sum)
        return sparse.csr_matrix(sub, dtype=np.float32)

    def encode(self, value: tuple[CellCounts, Optional[str]]):
        from scipy import sparse

        cell, batch = value
        cols = self._column_map(cell.features)
        out = cols[cell.indices]
        keep = out >= 0
        row = sparse.csr_matrix((cell.values[keep], out[keep], [0, int(keep.sum())]), shape=(1, len(self.selected)))
        row = self._transform(row, np.array([cell.total]))
        if self.lsi:
            row = sparse.csr_matrix(row @ np.asarray(self.lsi, dtype=np.float32))
        if self.batches:
            onehot = np.zeros((1, len(self.batches)), np.float32)
            if batch is not None:
                if batch not in self.batches:
                    raise DataError(f"batch {batch!r} was not seen in training (known: {self.batches[:10]})", column=self.options.batch)
                onehot[0, self.batches.index(batch)] = 1
            row = sparse.hstack([row, sparse.csr_matrix(onehot)], format="csr")
        return row.astype(np.float32)

    def empty(self):
        from scipy import sparse

        return sparse.csr_matrix((1, self.dim), dtype=np.float32)

    def stack(self, values: list) -> SparseRows:
        from scipy import sparse

        return SparseRows(sparse.vstack(values, format="csr") if values else self.empty()[:0])

    def example(self, n: int, generator):
        import torch

        return torch.rand(n, self.dim, generator=generator)

    def encoder_info(self) -> dict[str, Any]:
        return {"input_dim": self.dim, "transform": self.options.transform if not self.lsi else "lsi"}

    def state_dict(self) -> dict[str, Any]:
        return {"input_names": self.input_names, "n_input": self.n_input, "selected": self.selected, "idf": self.idf,
                "lsi": self.lsi, "batches": self.batches, "dim": self.dim}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("input_names", "n_input", "selected", "idf", "lsi", "batches", "dim"):
            setattr(self, key, state[key])
        self._maps = {}
        super().load_state_dict(state)

    # -- serving ----------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "type": "object {feature: count} or array of counts", "features": self.n_input}

    def request_cells(self, value: Any, field: str) -> tuple:
        expect = f"an object {{feature name: count}} or a list of {self.n_input} counts"
        try:
            cell = as_cell_counts(value, self.input_names)
        except DataError as err:
            raise RequestError(field, err.reason, expect) from None
        return (cell,)


def is_missing_cell(value: Any) -> bool:
    return value is None or (not isinstance(value, (CellCounts, dict, list, np.ndarray)) and not hasattr(value, "tocsr") and is_missing(value))


def as_cell_counts(value: Any, names: Optional[list[str]] = None) -> CellCounts:
    """A cell from CellCounts, a 1-row sparse matrix, a dense vector/list, or a {feature: count} mapping."""
    if isinstance(value, CellCounts):
        return value
    if hasattr(value, "tocsr"):
        row = value.tocsr()
        if row.shape[0] != 1:
            raise DataError(f"expected one cell (a 1-row sparse matrix), got {row.shape[0]} rows")
        row.sum_duplicates()
        return CellCounts(row.indices.astype(np.int32), row.data.astype(np.float32), FeatureList(None, row.shape[1]))
    if isinstance(value, dict):
        if names is None:
            raise DataError("this model was trained without feature names; send a list of counts")
        pos = {n: i for i, n in enumerate(names)}
        unknown = [k for k in value if k not in pos]
        if unknown:
            raise DataError(f"unknown features {unknown[:5]}")
        try:
            vals = np.asarray([float(v) for v in value.values()], dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError("counts must be numbers") from None
        return CellCounts(np.asarray([pos[k] for k in value], np.int32), vals, FeatureList(names))
    try:
        dense = np.asarray(value, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"expected counts (a sparse row, a list of numbers or {{feature: count}}), got {str(value)[:60]!r}") from None
    nz = np.flatnonzero(dense).astype(np.int32)
    return CellCounts(nz, dense[nz], FeatureList(names, len(dense)) if names is not None and len(names) == len(dense) else FeatureList(None, len(dense)))


def _at(cell: CellCounts, where: np.ndarray) -> str:
    if cell.features.names is None:
        return f" at feature {int(cell.indices[where][0])}"
    return f" at feature {cell.features.names[int(cell.indices[where][0])]!r}"


def normalize_log1p(matrix, target_sum: float = 1e4):
    """Library-size normalised log1p of a CSR counts matrix [cells, features] (stays sparse)."""
    from scipy import sparse

    totals = np.asarray(matrix.sum(axis=1)).ravel()
    out = sparse.diags((target_sum / np.maximum(totals, 1e-12)).astype(np.float32)) @ sparse.csr_matrix(matrix, dtype=np.float32)
    out = sparse.csr_matrix(out)
    out.data = np.log1p(out.data)
    return out


def select_features(matrix, n: int, how: str = "variance", target_sum: float = 1e4) -> list[int]:
    """Indices (sorted) of the ``n`` most variable or most often detected features of a CSR counts matrix; all
    features when ``n`` is 0 or not smaller than their number.

    Variable (Seurat v3 style): each feature's count variance over the variance expected at its mean, the
    expectation a quadratic fit of log variance on log mean across features (Poisson-like noise grows with the mean,
    so raw variance would just pick the most expressed genes).
    """
    n_feat = matrix.shape[1]
    if not n or n >= n_feat:
        return list(range(n_feat))
    if how == "frequency":
        score = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(np.float64)
    else:
        x = matrix.astype(np.float64)
        mean = np.asarray(x.mean(axis=0)).ravel()
        var = np.asarray(x.multiply(x).mean(axis=0)).ravel() - mean ** 2
        ok = (mean > 0) & (var > 0)
        score = np.full(n_feat, -np.inf)
        if ok.sum() >= 3:
            lm, lv = np.log10(mean[ok]), np.log10(var[ok])
            coef = np.polyfit(lm, lv, 2)
            score[ok] = lv - np.polyval(coef, lm)
        else:
            score[ok] = var[ok]
    order = np.argsort(-score, kind="stable")[:n]
    return sorted(int(i) for i in order)


def fit_lsi(tfidf, components: int) -> list[list[float]]:
    """An LSI basis [features, components] from the training cells' TF-IDF (SVD; first component dropped)."""
    from sklearn.decomposition import TruncatedSVD

    k = min(components + 1, min(tfidf.shape) - 1)
    if k < 2:
        raise DataError(f"LSI needs more cells and features than {tfidf.shape}")
    svd = TruncatedSVD(n_components=k, random_state=0).fit(tfidf)
    return svd.components_[1:].T.astype(np.float32).tolist()
