"""BRCA1 missense variants (Findlay et al. 2018 saturation genome editing), annotated by Ng & Fraternali 2022.

885 variants at 117 residues of the RING and BRCT domains, each with a loss-of-function class and a function
score, and four modalities built here:

- ``context``: a window of reference residues around the variant plus the alternative residue (``sequence``);
- ``conservation``: PhyloP at the three codon positions and the EVmutation score (``vector``);
- ``structure``: ZoomVar relative solvent accessibility, interface contacts, surface/core/interface (``tabular``);
- ``domain``: Pfam domain and disorder (``tabular``, categorical).

The folder holds no reference sequence, so it is reconstructed from the reference residues that the three
variant tables name (:func:`brca1_reference`); window positions it does not cover are the gap ``-``.
Splits hold out whole positions (grouped k-fold): no residue is in both train and test.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..config import ModalityConfig, SequenceOptions, TabularOptions, VectorOptions
from ..errors import ConfigError
from .base import DatasetInfo, LoadedDataset, RemoteFile, github_raw, register
from .variant_features import (
    WINDOW_ALPHABET,
    VariantSkips,
    check_variants,
    covered_ranges,
    reference_from_variants,
    residue_window,
)

FOLDER = "variant_brca1_multiscale"
VARIANTS = "BRCA1_DMS_annotated.csv"
ZOOMVAR = "BRCA1_ZoomVar.tsv"
EVMUTATION = "BRCA1_EVmutation.tsv"
FINDLAY = "Findlay_et_al_BRCA_DMS.txt"
CONSERVATION = ["PhyloP_-1", "PhyloP_0", "PhyloP_1", "prediction_epistatic"]
STRUCTURE_NUMERIC = ["Q(SASA)", "num_interactions"]
STRUCTURE_CATEGORICAL = ["struct_cat"]
DOMAIN_CATEGORICAL = ["domain", "disorder", "disorder_cat"]
CLASS_TARGET = "func.class"
SCORE_TARGET = "function.score.mean"


def brca1_reference(root: Path) -> dict[int, str]:
    """``{position: residue}`` from the reference residues of the annotated, Findlay and EVmutation tables."""
    variants = pd.read_csv(root / VARIANTS, index_col=0)
    findlay = pd.read_csv(root / FINDLAY, sep="\t", comment="#")
    ev = pd.read_csv(root / EVMUTATION, sep="\t")
    return reference_from_variants(
        [(variants, "aa_pos", "aa_ref", VARIANTS), (findlay, "aa_pos", "aa_ref", FINDLAY), (ev, "pos", "wt", EVMUTATION)]
    )


def position_folds(positions: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold of each row: the distinct positions are shuffled with ``seed`` and dealt round-robin into ``folds``."""
    unique = np.random.default_rng(seed).permutation(np.unique(positions))
    fold_of = {p: i % folds for i, p in enumerate(unique)}
    return np.array([fold_of[p] for p in positions])


def brca1_table(root: Path, window: int = 7, on_error: Literal["raise", "skip"] = "raise", table: pd.DataFrame | None = None) -> tuple[pd.DataFrame, VariantSkips, dict[int, str]]:
    """The variant table with the modality columns added, the skipped rows, and the reconstructed reference.

    ``table`` replaces the annotated CSV (same columns), e.g. for checking user variants; ``window`` is the
    number of reference residues on each side of the variant.
    """
    reference = brca1_reference(root)
    source = str(root / VARIANTS) if table is None else "variants"
    frame = pd.read_csv(root / VARIANTS, index_col=0) if table is None else table.copy()
    zoom = pd.read_csv(root / ZOOMVAR, sep="\t").set_index("position")
    frame, skips = check_variants(frame, reference, covered=set(zoom.index), covered_name=f"{ZOOMVAR} (the structure annotation)", table=source, on_error=on_error)
    frame = frame.copy()
    frame["aa_pos"] = frame["aa_pos"].astype(int)
    frame["aa_ref"] = frame["aa_ref"].str.upper()
    frame["aa_alt"] = frame["aa_alt"].str.upper()
    frame["window"] = [residue_window(reference, p, window) for p in frame["aa_pos"]]
    per_residue = zoom.loc[frame["aa_pos"], ["num_interactions", "struct_cat", *DOMAIN_CATEGORICAL]].reset_index(drop=True)
    per_residue["domain"] = per_residue["domain"].fillna("none").str.replace("P38398_", "", regex=False)
    for col in per_residue:
        frame[col] = per_residue[col].to_numpy()
    frame["struct_cat"] = frame["struct_cat"].fillna("none")
    frame["Q(SASA)"] = pd.to_numeric(frame["Q(SASA)"], errors="coerce")
    return frame, skips, reference


def brca1_modalities(window: int = 7, dim: int = 16) -> list[ModalityConfig]:
    """The four modalities, with small encoders (the data set is 885 rows)."""
    length = 2 * window + 2  # the window, then the alternative residue
    return [
        ModalityConfig(
            name="context", kind="sequence", columns=["window", "aa_alt"],
            options=SequenceOptions(alphabet=WINDOW_ALPHABET, max_len=length),
            encoder={"name": "sequence_positional_cnn", "dim": dim, "options": {"embed_dim": 8, "filters": 8, "kernel_size": 3}},
        ),
        ModalityConfig(name="conservation", kind="vector", columns=CONSERVATION, options=VectorOptions(), encoder={"dim": dim, "options": {"hidden": [32]}}),
        ModalityConfig(
            name="structure", kind="tabular", options=TabularOptions(numeric=STRUCTURE_NUMERIC, categorical=STRUCTURE_CATEGORICAL),
            encoder={"dim": dim, "options": {"hidden": 32}},
        ),
        ModalityConfig(
            name="domain", kind="tabular", options=TabularOptions(categorical=DOMAIN_CATEGORICAL, handle_unknown="ignore"),
            encoder={"dim": dim, "options": {"hidden": 32}},
        ),
    ]


def load_brca1(
    roots: dict[str, Path], task: Literal["classification", "regression"] = "classification", fold: int = 0, folds: int = 5,
    seed: int = 0, window: int = 7,
) -> LoadedDataset:
    """Test = the positions of fold ``fold`` of a grouped ``folds``-fold split (shuffled with ``seed``); train = the rest.

    ``task="classification"`` predicts ``func.class`` (1 = loss of function), ``"regression"`` the function score.
    Both frames carry every column, including ``fold``.
    """
    if not 0 <= fold < folds:
        raise ConfigError(f"dataset 'brca1': fold must be in 0..{folds - 1}, got {fold}")
    root = roots[FOLDER]
    frame, _, _ = brca1_table(root, window)
    frame["fold"] = position_folds(frame["aa_pos"].to_numpy(), folds, seed)
    test = frame["fold"] == fold
    return LoadedDataset(
        name="brca1",
        description=INFO.description,
        train=frame[~test].reset_index(drop=True),
        test=frame[test].reset_index(drop=True),
        target=CLASS_TARGET if task == "classification" else SCORE_TARGET,
        task=task,
        modalities=brca1_modalities(window),
        root=root,
    )


def describe_reference(reference: dict[int, str]) -> str:
    """Which positions the reconstructed reference covers, e.g. ``"326 residues: 2–103, 1315–1863 ..."``."""
    runs = covered_ranges(reference)
    return f"{len(reference)} residues in {len(runs)} runs: " + ", ".join(f"{a}–{b}" if a != b else str(a) for a, b in runs)


_COMMIT = "c415eae988f2ca0ee9dbaa676531e26cb10daa48"
_FILES = (
    (VARIANTS, "6aed30905f7b9782c5c163bdc753c147ad0990601d53c025342ef5b0b4c568bb"),
    (EVMUTATION, "9c9f332311f47b5343c0f656e938531211250328d5166132effc5b512c9d1704"),
    (ZOOMVAR, "a7feefc3766eb5673bb4a242a1971a00a2acc3a34a1af09155b5d371b42ffc44"),
    (FINDLAY, "7d66423191d0535de9aafe9d8701b3c97c2abb160de15b540b6dda0a99765977"),
)

INFO = register(
    DatasetInfo(
        name="brca1",
        description="BRCA1 missense variants: 885 SNVs at 117 RING/BRCT residues, loss-of-function class (244 LOF / 641 functional) "
        "and function score from saturation genome editing; sequence window, conservation, structure and domain modalities; "
        "grouped-by-position folds.",
        reference="Single-feature AUROC for loss of function (Ng & Fraternali 2022 data, all rows): EVmutation 0.906, burial 0.774, PhyloP 0.545.",
        licence="MIT (github.com/josef0731/mutational-dark-matter); labels from Findlay et al. 2018 (Nature 562:217).",
        folders={FOLDER: tuple(RemoteFile(p, github_raw("josef0731/mutational-dark-matter", _COMMIT, f"Prediction/{p}"), sha) for p, sha in _FILES)},
        loader=load_brca1,
    )
)
