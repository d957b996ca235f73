"""Single-cell inputs as a table of cells: ``.h5ad``, ``.h5mu``, 10x ``.h5``, Matrix Market folders, AnnData / MuData
objects, scipy sparse matrices, or a mapping of modality name → any of these.

Each modality becomes one column whose cell is that cell's sparse counts (``CellCounts``) or None; cells are
matched across modalities by name, so a cell that one modality lacks has that modality missing (``join="outer"``)
or is dropped and counted (``join="inner"``). Per-cell annotations (``obs``) become ordinary columns (targets,
batch labels). Nothing is densified here: the counts kind keeps rows sparse until a batch is built.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from ..errors import DataError
from ..kinds.sparse import CellCounts, FeatureList

SUFFIXES = (".h5ad", ".h5mu", ".h5", ".mtx", ".mtx.gz")
#: 10x feature types → modality names
FEATURE_TYPES = {"Gene Expression": "rna", "Antibody Capture": "prot", "Peaks": "atac", "CRISPR Guide Capture": "crispr"}


def _missing(name: str) -> DataError:
    return DataError(f"reading {name} needs the singlecell extra: pip install 'modalfuse[singlecell]'")


@dataclass
class Modality:
    """One modality before joining: a CSR matrix [cells, features] with cell and feature names."""

    matrix: Any
    cells: list[str]
    features: Optional[list[str]]
    obs: Optional[pd.DataFrame] = None


def is_singlecell_path(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(SUFFIXES) or (path.is_dir() and any((path / f).exists() for f in ("matrix.mtx", "matrix.mtx.gz")))


def is_singlecell_object(data: Any) -> bool:
    """AnnData, MuData, a scipy sparse matrix, or a mapping holding any of these (or single-cell file paths)."""
    if _is_anndata(data) or _is_mudata(data) or _is_sparse(data) or isinstance(data, Modality):
        return True
    if isinstance(data, Mapping):
        return any(_is_anndata(v) or _is_mudata(v) or _is_sparse(v) or isinstance(v, Modality) or (isinstance(v, (str, Path)) and is_singlecell_path(Path(v)))
                   for v in data.values())
    return False


def _is_sparse(x: Any) -> bool:
    return type(x).__module__.startswith("scipy.sparse")


def _is_anndata(x: Any) -> bool:
    return type(x).__name__ == "AnnData" and hasattr(x, "obs_names")


def _is_mudata(x: Any) -> bool:
    return type(x).__name__ == "MuData" and hasattr(x, "mod")


# ------------------------------------------------------------------------------------------------ file readers
def read_10x_h5(path: str | Path) -> dict[str, Modality]:
    """A 10x-style ``.h5`` (``matrix/{data,indices,indptr,shape}`` CSC features × cells, or a dense ``matrix/data``),
    split into one modality per feature type (rna, prot, atac, ...); a file of one type gives modality "X"."""
    try:
        import h5py
    except ImportError:
        raise _missing(".h5 files") from None
    from scipy import sparse

    path = Path(path)
    try:
        with h5py.File(path, "r") as h5:
            group = h5["matrix"] if "matrix" in h5 else h5[next(iter(h5.keys()))]
            barcodes = _strings(group["barcodes"][()])
            feats = group["features"]
            if isinstance(feats, h5py.Group):
                names = _strings(feats["name"][()] if "name" in feats else feats["id"][()])
                types = _strings(feats["feature_type"][()]) if "feature_type" in feats else None
            else:
                names, types = _strings(feats[()]), None
            if "indptr" in group:
                shape = tuple(int(s) for s in group["shape"][()])
                matrix = sparse.csc_matrix((group["data"][()], group["indices"][()], group["indptr"][()]), shape=shape).T.tocsr()
            else:
                dense = np.asarray(group["data"][()])
                # stored cells × features or features × cells: the barcodes say which axis is which
                matrix = sparse.csr_matrix(dense if dense.shape[0] == len(barcodes) and dense.shape[1] == len(names) else dense.T)
    except (OSError, KeyError) as err:
        raise DataError(f"not a 10x-style .h5 (matrix/data, matrix/features, matrix/barcodes): {err}", table=path) from None
    if matrix.shape != (len(barcodes), len(names)):
        raise DataError(f"matrix shape {matrix.shape} does not match {len(barcodes)} barcodes × {len(names)} features", table=path)
    if types is None or len(set(types)) == 1:
        return {"X": Modality(matrix, barcodes, names)}
    out = {}
    types_arr = np.asarray(types)
    for t in dict.fromkeys(types):
        cols = np.flatnonzero(types_arr == t)
        out[FEATURE_TYPES.get(t, t.lower().replace(" ", "_"))] = Modality(matrix[:, cols], barcodes, [names[i] for i in cols])
    return out


def read_mtx(matrix: str | Path, features: str | Path, cells: str | Path, features_by_cells: bool = True) -> Modality:
    """A Matrix Market file with its feature and cell name files (one name per line, first tab-separated field;
    CSV name files with a header take their first column)."""
    from scipy import io

    try:
        mat = io.mmread(str(matrix))
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read Matrix Market file: {err}", table=matrix) from None
    mat = (mat.T if features_by_cells else mat).tocsr()
    feats, names = _names(features), _names(cells)
    if mat.shape != (len(names), len(feats)):
        raise DataError(f"matrix is {mat.shape[1] if features_by_cells else mat.shape[0]} features × "
                        f"{mat.shape[0] if features_by_cells else mat.shape[1]} cells but the name files list "
                        f"{len(feats)} features and {len(names)} cells", table=matrix)
    return Modality(mat, names, feats)


def read_mtx_folder(folder: str | Path) -> dict[str, Modality]:
    """A 10x ``filtered_feature_bc_matrix`` folder: matrix.mtx(.gz), features.tsv(.gz) or genes.tsv, barcodes.tsv(.gz)."""
    folder = Path(folder)

    def find(*names: str) -> Path:
        for n in names:
            for p in (folder / n, folder / f"{n}.gz"):
                if p.exists():
                    return p
        raise DataError(f"the folder has no {' or '.join(names)}", table=folder)

    return {"X": read_mtx(find("matrix.mtx"), find("features.tsv", "genes.tsv"), find("barcodes.tsv"))}


def _names(path: str | Path) -> list[str]:
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        lines = [line.rstrip("\n\r") for line in fh if line.strip()]
    if path.name.endswith((".csv", ".csv.gz")):
        frame = pd.read_csv(path)
        return [str(x) for x in frame.iloc[:, 0]]
    # 10x features.tsv: id, name, type; the name (second field) is what genes are matched by
    fields = [line.split("\t") for line in lines]
    col = 1 if fields and len(fields[0]) >= 2 and path.name.startswith("features") else 0
    return [f[col].strip('"') for f in fields]


def _strings(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1)]


# ------------------------------------------------------------------------------------------------ objects
def _from_anndata(adata: Any, name: str) -> dict[str, Modality]:
    """X as modality ``name``; each layer as ``name:layer``."""
    from scipy import sparse

    cells, feats = [str(c) for c in adata.obs_names], [str(v) for v in adata.var_names]
    out = {}
    for key, mat in [(name, adata.X), *((f"{name}:{k}", v) for k, v in adata.layers.items())]:
        if mat is None:
            continue
        mat = sparse.csr_matrix(mat) if not _is_sparse(mat) else mat.tocsr()
        out[key] = Modality(mat, cells, feats, adata.obs if key == name else None)
    return out


def _source(value: Any, name: str, where: str) -> dict[str, Modality]:
    """One value of a mapping (or the whole input) → its modalities."""
    if isinstance(value, Modality):
        return {name: value}
    if _is_mudata(value):
        out = {}
        for mod_name, adata in value.mod.items():
            out.update(_from_anndata(adata, mod_name))
            out[mod_name].obs = None
        if len(value.obs.columns):  # the joint annotations ("rna:celltype", ...), indexed by the union of cells
            out["__obs__"] = Modality(None, [str(c) for c in value.obs_names], None, value.obs)
        return out
    if _is_anndata(value):
        return _from_anndata(value, name)
    if _is_sparse(value):
        mat = value.tocsr()
        return {name: Modality(mat, [str(i) for i in range(mat.shape[0])], None)}
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.exists():
            raise DataError("file not found", table=path)
        lower = path.name.lower()
        if lower.endswith(".h5ad"):
            try:
                import anndata
            except ImportError:
                raise _missing(".h5ad files") from None
            return _from_anndata(anndata.read_h5ad(path), name)
        if lower.endswith(".h5mu"):
            try:
                import mudata
            except ImportError:
                raise _missing(".h5mu files") from None
            return _source(mudata.read_h5mu(path), name, where)
        if lower.endswith(".h5"):
            mods = read_10x_h5(path)
            return {name: mods["X"]} if "X" in mods else mods
        if path.is_dir():
            return {name: read_mtx_folder(path)["X"]}
        raise DataError(f"unsupported single-cell file; expected {', '.join(SUFFIXES)} or a Matrix Market folder", table=path)
    raise TypeError(f"{where}: expected AnnData, MuData, a scipy sparse matrix or a single-cell file path, got {type(value).__name__}")


def read_cells(source: Any, join: str = "outer") -> tuple[pd.DataFrame, dict[str, Any]]:
    """The cells of ``source`` as a frame (index: cell names) and a summary of how the modalities' cells matched.

    ``source``: a path, AnnData, MuData, a sparse matrix, or a mapping name → one of these (or a ``Modality``, e.g.
    from ``read_mtx``), or name → a per-cell
    annotation (a Series/DataFrame indexed by cell name, or a list in the order of the modalities' shared cells).
    """
    if join not in ("outer", "inner"):
        raise DataError(f"join must be 'outer' or 'inner', got {join!r}")
    mods: dict[str, Modality] = {}
    annotations: dict[str, Any] = {}
    if isinstance(source, Mapping):
        for key, value in source.items():
            if isinstance(value, (pd.Series, pd.DataFrame, list, tuple, np.ndarray)) and not _is_sparse(value):
                annotations[str(key)] = value
            else:
                mods.update(_source(value, str(key), f"modality {key!r}"))
    else:
        mods.update(_source(source, "X", "input"))
    obs_mods = {k: m for k, m in mods.items() if m.matrix is None}
    mods = {k: m for k, m in mods.items() if m.matrix is not None}
    if not mods:
        raise DataError("no count modality in the input (expected AnnData, MuData, sparse matrices or single-cell files)")
    per_mod = {}
    for name, mod in mods.items():
        seen = pd.Index(mod.cells)
        if seen.has_duplicates:
            dup = seen[seen.duplicated()][0]
            raise DataError(f"cell id {dup!r} appears more than once in modality {name!r}; cell ids must be unique per modality")
        per_mod[name] = seen
    order = list(dict.fromkeys(c for idx in per_mod.values() for c in idx))
    in_all = set.intersection(*(set(idx) for idx in per_mod.values()))
    summary: dict[str, Any] = {
        "cells": len(order), "in_every_modality": len(in_all),
        "per_modality": {k: len(v) for k, v in per_mod.items()},
        "only_in": {k: int(sum(1 for c in v if all(c not in per_mod[o] or o == k for o in per_mod))) for k, v in per_mod.items()} if len(per_mod) > 1 else {},
        "join": join, "dropped": 0,
    }
    if join == "inner":
        summary["dropped"] = len(order) - len(in_all)
        order = [c for c in order if c in in_all]
    index = pd.Index(order, name="cell")
    columns: dict[str, Any] = {}
    for name, mod in mods.items():
        columns[name] = _cells_column(mod, index)
    frame = pd.DataFrame(columns, index=index)
    for mod in [*mods.values(), *obs_mods.values()]:
        if mod.obs is not None and len(mod.obs.columns):
            obs = mod.obs.copy()
            obs.index = [str(c) for c in obs.index]
            for col in obs.columns:
                if str(col) not in frame.columns:
                    frame[str(col)] = obs[col].reindex(index).to_numpy()
    for key, value in annotations.items():
        frame[key] = _annotation(value, key, index, per_mod)
    frame.attrs["singlecell"] = summary
    return frame, summary


def _cells_column(mod: Modality, index: pd.Index) -> np.ndarray:
    mat = mod.matrix.tocsr()
    mat.sum_duplicates()
    feats = FeatureList(mod.features, mat.shape[1])
    row_of = pd.Series(np.arange(len(mod.cells)), index=pd.Index(mod.cells)).reindex(index)
    out = np.empty(len(index), dtype=object)
    data = np.asarray(mat.data, dtype=np.float32)
    indices = np.asarray(mat.indices, dtype=np.int32)
    for i, r in enumerate(row_of.to_numpy()):
        if np.isnan(r):
            out[i] = None
            continue
        r = int(r)
        lo, hi = mat.indptr[r], mat.indptr[r + 1]
        out[i] = CellCounts(indices[lo:hi], data[lo:hi], feats)
    return out


def _annotation(value: Any, key: str, index: pd.Index, per_mod: Mapping[str, pd.Index]) -> np.ndarray:
    if isinstance(value, pd.DataFrame):
        if value.shape[1] != 1:
            raise DataError(f"annotation {key!r}: give one column (a Series), got {value.shape[1]}")
        value = value.iloc[:, 0]
    if isinstance(value, pd.Series) and not isinstance(value.index, pd.RangeIndex):
        value = value.copy()
        value.index = [str(c) for c in value.index]
        return value.reindex(index).to_numpy()
    values = list(value)
    if len(values) != len(index):
        raise DataError(f"annotation {key!r} has {len(values)} values but there are {len(index)} cells; "
                        "give a Series indexed by cell name to match cells by name")
    return np.asarray(values, dtype=object)
