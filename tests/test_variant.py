"""Variant-effect datasets (brca1, gb1): mutation checks, windows, structure readers, folds, small fits, bad input."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from modalfuse import MultimodalModel
from modalfuse.datasets import DATASETS, list_datasets, load_dataset
from modalfuse.datasets.brca1 import brca1_modalities, brca1_reference, brca1_table, position_folds
from modalfuse.datasets.gb1 import gb1_modalities, gb1_table, single_effects, wild_type
from modalfuse.datasets.variant_features import (
    GAP,
    check_variants,
    covered_ranges,
    parse_mutation,
    read_pdb,
    read_ss2,
    residue_structure_features,
    residue_window,
)
from modalfuse.errors import DataError

FAST = {"batch_size": 64, "lr": 3e-3, "patience": 0, "seed": 0, "progress": False, "threads": 1, "val_fraction": 0.15}


@pytest.fixture(scope="module")
def brca1_root(shared_data: Path) -> Path:
    root = shared_data / "variant_brca1_multiscale"
    if not root.is_dir():
        pytest.skip("variant_brca1_multiscale not in shared data")
    return root


@pytest.fixture(scope="module")
def gb1_root(shared_data: Path) -> Path:
    root = shared_data / "variant_gb1_multiscale"
    if not root.is_dir():
        pytest.skip("variant_gb1_multiscale not in shared data")
    return root


@pytest.fixture(scope="module")
def gb1_slice(gb1_root: Path) -> pd.DataFrame:
    return pd.read_csv(gb1_root / "gb1_data.csv.gz", nrows=4000)


# ----------------------------------------------------------------------------- generic helpers

def test_parse_mutation_and_unknown_letter() -> None:
    assert parse_mutation("I21L") == ("I", 21, "L")
    with pytest.raises(DataError, match="unknown residue letter 'B'"):
        parse_mutation("I21B")
    with pytest.raises(DataError, match="not of the form"):
        parse_mutation("21L")


def test_check_variants_names_the_row_or_counts_skips() -> None:
    reference = {1: "M", 2: "D", 3: "L"}
    frame = pd.DataFrame({"aa_ref": ["M", "X", "D", "D", "L"], "aa_pos": [1, 2, 9, 3, 3], "aa_alt": ["A", "A", "A", "A", "P"]},
                         index=[10, 11, 12, 13, 14])
    with pytest.raises(DataError, match=r"t\.csv, row 11, column 'aa_ref': unknown residue letter 'X'"):
        check_variants(frame, reference, table="t.csv")
    kept, skips = check_variants(frame, reference, on_error="skip")
    assert list(kept.index) == [10, 14]
    assert skips.count == 3
    reasons = dict(skips.rows)
    assert "unknown residue letter" in reasons[11]
    assert "position 9 is outside the reference" in reasons[12]
    assert "reference residue D at position 3 does not match the sequence, which has L" == reasons[13]
    kept, skips = check_variants(frame.loc[[10, 14]], reference, covered={1}, covered_name="the structure", on_error="skip")
    assert list(kept.index) == [10] and "position 3 is outside the structure" in skips.rows[0][1]


def test_window_fills_unknown_neighbours_with_gap() -> None:
    reference = {1: "M", 2: "D", 3: "L", 10: "K"}
    assert residue_window(reference, 2, 2) == f"{GAP}MDL{GAP}"
    assert residue_window(reference, 10, 1) == f"{GAP}K{GAP}"
    assert covered_ranges([1, 2, 3, 10, 11]) == [(1, 3), (10, 11)]


# ----------------------------------------------------------------------------- BRCA1

def test_brca1_registry_checksums_match_local_files(brca1_root: Path) -> None:
    assert {"brca1", "gb1"} <= set(list_datasets())
    for remote in DATASETS["brca1"].folders["variant_brca1_multiscale"]:
        assert hashlib.sha256((brca1_root / remote.path).read_bytes()).hexdigest() == remote.sha256, remote.path


def test_brca1_reference_is_reconstructed_not_invented(brca1_root: Path) -> None:
    reference = brca1_reference(brca1_root)
    variants = pd.read_csv(brca1_root / "BRCA1_DMS_annotated.csv", index_col=0)
    for p, r in zip(variants["aa_pos"], variants["aa_ref"]):
        assert reference[p] == r
    assert reference[1] == "M"  # the start codon (from the Findlay table)
    runs = covered_ranges(reference)
    assert len(runs) == 2 and runs[0][0] == 1  # RING and BRCT regions only
    assert 500 not in reference
    window = residue_window(reference, 1, 7)
    assert window[:7] == GAP * 7 and window[7] == "M"


def test_brca1_folds_hold_out_whole_positions(brca1_root: Path, shared_data: Path) -> None:
    seen = []
    for fold in range(5):
        ds = load_dataset("brca1", data_dir=shared_data, download=False, fold=fold, seed=3)
        assert not set(ds.train["aa_pos"]) & set(ds.test["aa_pos"])
        seen.append(ds.test)
        assert len(ds.train) + len(ds.test) == 885
    assert len(pd.concat(seen)) == 885 and pd.concat(seen)["aa_pos"].nunique() == 117
    assert ds.task == "classification" and ds.target == "func.class"
    assert load_dataset("brca1", data_dir=shared_data, download=False, task="regression").target == "function.score.mean"


def test_brca1_bad_variants_raise_with_row_or_are_counted(brca1_root: Path) -> None:
    table = pd.read_csv(brca1_root / "BRCA1_DMS_annotated.csv", index_col=0).iloc[:6].copy()
    table.loc[1, "aa_alt"] = "J"          # unknown residue letter
    table.loc[2, "aa_pos"] = 500          # not in the reconstructed reference, nor in the structure annotation
    table.loc[3, "aa_ref"] = "W"          # reference does not match the sequence (position 21 is I)
    with pytest.raises(DataError, match=r"variants, row 1, column 'aa_alt': unknown residue letter 'J'"):
        brca1_table(brca1_root, table=table)
    frame, skips, _ = brca1_table(brca1_root, table=table, on_error="skip")
    assert skips.count == 3 and len(frame) == 3
    assert [row for row, _ in skips.rows] == [1, 2, 3]
    assert "outside the reference" in skips.rows[1][1]
    assert "does not match the sequence, which has I" in skips.rows[2][1]
    assert set(frame["window"].str.len()) == {15}


def test_brca1_small_fusion_has_per_variant_weights(brca1_root: Path) -> None:
    frame, _, _ = brca1_table(brca1_root, window=1)
    folds = position_folds(frame["aa_pos"].to_numpy(), 5, 0)
    train, test = frame[folds != 0], frame[folds == 0]
    mods = [m for m in brca1_modalities(window=1) if m.name in ("context", "conservation", "structure")]
    model = MultimodalModel(mods, "func.class", model={"fusion": {"name": "gated", "dim": 16}, "head_hidden": 16},
                            train={**FAST, "max_epochs": 8}, task="classification", cache_dir="none")
    model.fit(train)
    out = model.predict_frame(test)
    weights = out[["weight_context", "weight_conservation", "weight_structure"]].to_numpy()
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert weights.std(axis=0).max() > 0  # per-variant, not one global weight
    # the positions of this fold were never seen in training; EVmutation in the conservation vector carries the signal
    assert roc_auc_score(test["func.class"], out["proba_1"]) > 0.75


# ----------------------------------------------------------------------------- structure files

def test_pdb_and_ss2_readers(gb1_root: Path, tmp_path: Path) -> None:
    structure = read_pdb(gb1_root / "1pga.pdb")
    assert structure.numbers == list(range(1, 57))
    assert structure.residues.startswith("MTYKLILNGK")
    feats = residue_structure_features(structure)
    # W43, F52 and Y3 pack the hydrophobic core; K10 and K28 are on the surface
    assert feats.loc[[3, 43, 52], "burial"].min() > feats.loc[[10, 28], "burial"].max()
    ss = read_ss2(gb1_root / "gb1.ss2")
    assert len(ss) == 56 and (ss.loc[25:35, "ss"] == "H").all() and (ss.loc[3:7, "ss"] == "E").all()
    assert ss.loc[30, "p_helix"] > 0.9 and ss.loc[1, "residue"] == "M"
    empty = tmp_path / "empty.pdb"
    empty.write_text("HEADER    NOTHING\nEND\n")
    with pytest.raises(DataError, match="no ATOM records"):
        read_pdb(empty)


# ----------------------------------------------------------------------------- GB1

def test_gb1_registry_checksums_match_local_files(gb1_root: Path) -> None:
    remotes = DATASETS["gb1"].folders["variant_gb1_multiscale"]
    assert {r.path for r in remotes} >= {"gb1_data.csv.gz", "1pga.pdb", "gb1.ss2", "Olson2014_TableS2_singles.txt"}
    for remote in remotes:
        assert hashlib.sha256((gb1_root / remote.path).read_bytes()).hexdigest() == remote.sha256, remote.path


def test_gb1_features_and_additive_prior(gb1_root: Path, gb1_slice: pd.DataFrame) -> None:
    frame, skips = gb1_table(gb1_root, table=gb1_slice)
    assert skips.count == 0 and len(frame) == len(gb1_slice)
    wt = wild_type(gb1_root)
    assert len(wt) == 55 and wt.startswith("QYKLILNG")
    row = frame.iloc[0]
    diffs = [i + 2 for i, (a, b) in enumerate(zip(row["x"], wt)) if a != b]
    assert [row["site_a"], row["site_b"]] == diffs
    singles = single_effects(gb1_root, wt)
    assert np.isfinite(singles).all() and singles[0, "ACDEFGHIKLMNPQRSTVWY".index("Q")] == 0.0
    assert np.allclose(frame["additive"], frame["single_a"] + frame["single_b"])
    assert ((frame["distance"] < 8) == (frame["touching"] == 1)).all()
    # the single-mutant effects already rank the doubles well (they come from the same experiment)
    assert spearmanr(frame["additive"], frame["y"]).statistic > 0.8


def test_gb1_bad_input(gb1_root: Path, gb1_slice: pd.DataFrame, tmp_path: Path) -> None:
    bad = gb1_slice.iloc[:5].copy()
    bad.loc[1, "x"] = "B" + bad.loc[1, "x"][1:]       # unknown residue letter
    bad.loc[2, "x"] = bad.loc[2, "x"][:-1]            # wrong length
    with pytest.raises(DataError, match=r"variants, row 1, column 'x': unknown residue letter\(s\) 'B'"):
        gb1_table(gb1_root, table=bad)
    frame, skips = gb1_table(gb1_root, table=bad, on_error="skip")
    assert len(frame) == 3 and skips.count == 2 and "54 residues, expected 55" in skips.rows[1][1]
    # a structure that stops at residue 40: a mutation at 54 lies outside it
    lines = [l for l in (gb1_root / "1pga.pdb").read_text().splitlines() if not l.startswith("ATOM") or int(l[22:26]) <= 40]
    short = tmp_path / "short.pdb"
    short.write_text("\n".join(lines) + "\n")
    wt = wild_type(gb1_root)
    far = gb1_slice.iloc[:2].copy()
    far.loc[1, "x"] = "A" + wt[1:52] + "A" + wt[53:]  # residues 2 and 54
    with pytest.raises(DataError, match=r"row 1, column 'x': position\(s\) 54 outside the structure \(residues 1–40\)"):
        gb1_table(gb1_root, table=far, pdb=short)
    kept, skips = gb1_table(gb1_root, table=far, pdb=short, on_error="skip")
    assert len(kept) == 1 and skips.count == 1


def test_gb1_singles_reference_mismatch_names_the_row(gb1_root: Path, tmp_path: Path) -> None:
    for name in ("GB1_sequence.fasta", "Olson2014_TableS2_wildtype.txt"):
        shutil.copy(gb1_root / name, tmp_path / name)
    text = (gb1_root / "Olson2014_TableS2_singles.txt").read_text().replace("\r\n", "\n").replace("\r", "\n").splitlines()
    text[3] = "T" + text[3][1:]  # the third single mutant claims wild type T at position 2 (the sequence has Q)
    (tmp_path / "Olson2014_TableS2_singles.txt").write_text("\n".join(text))
    with pytest.raises(DataError, match=r"row 3, column 'WT amino acid': reference residue T at position 2 does not match the sequence, which has Q"):
        single_effects(tmp_path, wild_type(tmp_path))


def test_gb1_small_fused_fit(gb1_root: Path, gb1_slice: pd.DataFrame) -> None:
    frame, _ = gb1_table(gb1_root, table=gb1_slice)
    train, test = frame.iloc[:3000], frame.iloc[3000:]
    model = MultimodalModel(gb1_modalities(dim=16), "y", model={"fusion": {"name": "gated", "dim": 16}, "head_hidden": 16},
                            train={**FAST, "batch_size": 128, "max_epochs": 6}, task="regression", cache_dir="none")
    model.fit(train)
    out = model.predict_frame(test)
    assert {"weight_mutant", "weight_structure", "weight_prior"} <= set(out.columns)
    assert spearmanr(out["prediction"], test["y"]).statistic > 0.7
