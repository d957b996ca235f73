"""Davis kinase binding affinities in the DeepDTA/GraphDTA format (setting 1: 5 train folds, 1 test fold)."""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..config import ModalityConfig, SequenceOptions
from .base import DatasetInfo, LoadedDataset, RemoteFile, github_raw, register

FOLDER = "davis"
AFFINITY = "drug-target_interaction_affinities_Kd__Davis_et_al.2011v1.txt"
#: GraphDTA's protein alphabet (25 upper-case letters; index 0 pads)
PROTEIN_ALPHABET = "ABCDEFGHIKLMNOPQRSTUVWXYZ"
#: DeepDTA's SMILES alphabet covers every character of Davis' canonical SMILES
SMILES_MAX_LEN = 85


def read_deepdta(root: Path) -> tuple[pd.DataFrame, list[list[int]], list[int]]:
    """All measured (drug, protein) pairs in row-major order of the affinity matrix, and the fold indices.

    Label: pKd = −log10(Kd / 1e9), Kd in nM, as DeepDTA and GraphDTA.
    """
    ligands = json.loads((root / "ligands_can.txt").read_text(), object_pairs_hook=OrderedDict)
    proteins = json.loads((root / "proteins.txt").read_text(), object_pairs_hook=OrderedDict)
    kd = np.loadtxt(root / AFFINITY)
    if kd.shape != (len(ligands), len(proteins)):
        raise ValueError(f"{root / AFFINITY}: a {kd.shape} matrix, expected {len(ligands)} drugs × {len(proteins)} proteins")
    drugs, targets = np.where(~np.isnan(kd))
    drug_ids, protein_ids = list(ligands), list(proteins)
    frame = pd.DataFrame(
        {
            "drug": [drug_ids[i] for i in drugs],
            "smiles": [ligands[drug_ids[i]] for i in drugs],
            "protein": [protein_ids[j] for j in targets],
            "sequence": [proteins[protein_ids[j]] for j in targets],
            "affinity": -np.log10(kd[drugs, targets] / 1e9),
        }
    )
    train_folds = json.loads((root / "folds" / "train_fold_setting1.txt").read_text())
    test_fold = json.loads((root / "folds" / "test_fold_setting1.txt").read_text())
    return frame, train_folds, test_fold


def load_davis(roots: dict[str, Path], ligand: Literal["graph", "smiles"] = "graph") -> LoadedDataset:
    """Train = the 5 train folds (column ``fold`` says which), test = the test fold.

    ``ligand="graph"`` reads drugs as molecular graphs (GraphDTA); ``"smiles"`` as character sequences (DeepDTA).
    """
    root = roots[FOLDER]
    frame, train_folds, test_fold = read_deepdta(root)
    train = frame.iloc[[i for fold in train_folds for i in fold]].copy()
    train["fold"] = np.repeat(np.arange(len(train_folds)), [len(f) for f in train_folds])
    drug = (
        ModalityConfig(name="drug", kind="graph", columns=["smiles"])
        if ligand == "graph"
        else ModalityConfig(name="drug", kind="sequence", columns=["smiles"], options=SequenceOptions(max_len=SMILES_MAX_LEN, uppercase=False))
    )
    protein = ModalityConfig(
        name="protein", kind="sequence", columns=["sequence"], options=SequenceOptions(alphabet=PROTEIN_ALPHABET, max_len=1000)
    )
    return LoadedDataset(
        name="davis",
        description=INFO.description,
        train=train.reset_index(drop=True),
        test=frame.iloc[test_fold].reset_index(drop=True),
        target="affinity",
        task="regression",
        modalities=[drug, protein],
        root=root,
    )


_COMMIT = "a546a8433a6822e958f36171c4356ad6f414d623"
_FILES = (
    ("ligands_can.txt", "141094d99510a52091d2ea1b05be7c1f66b2c5fcaeeeb261eaf4cbf2128bde6d"),
    ("proteins.txt", "187cedeee10cd3b58af915a2861a5ed0c4ff42a2d728f4dea5e0b47e3d75b291"),
    (AFFINITY, "e2c3d003d49aff61f70be24feafd8d084b0df9404d919338088855828e252d88"),
    ("folds/train_fold_setting1.txt", "bb7a63b2178c40a4e2417bc701b95511407787fa5eabb6a43a695fe6bd722f56"),
    ("folds/test_fold_setting1.txt", "c97589fa2fae318b01870854af0ab6fdd155dd38524cc6ac1d0319418ac6d568"),
)

INFO = register(
    DatasetInfo(
        name="davis",
        description="Davis kinase binding: 68 drugs (SMILES) × 442 kinases (sequences), 30,056 measured pKd values; "
        "DeepDTA setting 1 (25,046 train pairs in 5 folds, 5,010 test pairs).",
        reference="Test CI / MSE: DeepDTA 0.878 / 0.261, GraphDTA-GCN 0.880 / 0.254, GraphDTA-GIN 0.893 / 0.229.",
        licence="Davis et al. 2011 (Nat Biotechnol 29:1046); files as distributed by github.com/hkmztrk/DeepDTA (no licence file).",
        folders={FOLDER: tuple(RemoteFile(path, github_raw("hkmztrk/DeepDTA", _COMMIT, f"data/davis/{path}"), sha) for path, sha in _FILES)},
        loader=load_davis,
    )
)
