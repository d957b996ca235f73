"""Molecular graphs from SMILES (RDKit): GraphDTA's 78 atom features, bonds as edges in both directions."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ..errors import DataError
from .base import KINDS, KindOptions, Preprocessor

#: GraphDTA's element list; anything else maps to "Unknown"
ELEMENTS = (
    "C N O S F Si P Cl Br Mg Na Ca Fe As Al I B V K Tl Yb Sb Sn Ag Pd Co Se Ti Zn H Li Ge Cu Au Ni Cd In Mn Zr Cr Pt Hg Pb Unknown"
).split()
SMALL_COUNTS = 11  # one-hot of 0..10 for degree, hydrogens and implicit valence
NODE_FEATURES = len(ELEMENTS) + 3 * SMALL_COUNTS + 1


def _one_hot(value: Any, choices: list | tuple | range) -> list[float]:
    choices = list(choices)
    if value not in choices:
        value = choices[-1]
    return [float(value == c) for c in choices]


def _rdkit():
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise ImportError("the graph modality needs RDKit: pip install 'modalfuse[graph]'") from None
    RDLogger.DisableLog("rdApp.*")
    return Chem


def smiles_to_graph(smiles: str, normalize: bool = True) -> dict[str, np.ndarray]:
    """Atom features ``x`` [atoms, 78] and ``edge_index`` [2, 2·bonds]; raises DataError on invalid SMILES."""
    chem = _rdkit()
    mol = chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        raise DataError(f"invalid SMILES {smiles!r}: RDKit cannot parse it into a molecule")
    implicit = chem.ValenceType.IMPLICIT
    x = np.array(
        [
            _one_hot(a.GetSymbol(), ELEMENTS)
            + _one_hot(a.GetDegree(), range(SMALL_COUNTS))
            + _one_hot(a.GetTotalNumHs(), range(SMALL_COUNTS))
            + _one_hot(a.GetValence(implicit), range(SMALL_COUNTS))
            + [float(a.GetIsAromatic())]
            for a in mol.GetAtoms()
        ],
        dtype=np.float32,
    )
    if normalize:
        x /= x.sum(axis=1, keepdims=True)
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    edges = np.array(bonds + [(j, i) for i, j in bonds], dtype=np.int64).reshape(-1, 2).T
    return {"x": x, "edge_index": np.ascontiguousarray(edges)}


class GraphOptions(KindOptions):
    normalize: bool = Field(True, description="Scale each atom's feature vector to sum 1, as GraphDTA does.")


@KINDS.register("graph")
class GraphPreprocessor(Preprocessor):
    """SMILES strings → molecular graphs; each distinct molecule is parsed once per table."""

    Options = GraphOptions
    default_encoder = "graph_gin"
    onnx_unsupported = "graph batches have data-dependent shapes"
    indexed = True

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> dict[str, np.ndarray]:
        return smiles_to_graph(str(cells[0]).strip(), self.options.normalize)

    def encode(self, value: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return value

    def empty(self) -> dict[str, np.ndarray]:
        return {"x": np.zeros((0, NODE_FEATURES), np.float32), "edge_index": np.zeros((2, 0), np.int64)}

    def stack(self, values: list[dict[str, np.ndarray]]):
        from ..data.entities import GraphSet  # the data layer sits below the kinds: imported when used

        return GraphSet.from_arrays(values, NODE_FEATURES)

    def encoder_info(self) -> dict[str, Any]:
        return {"node_features": NODE_FEATURES}
