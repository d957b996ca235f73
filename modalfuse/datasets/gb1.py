"""Protein G B1 domain (GB1) double mutants (Olson et al. 2014), as packaged by MAVE-NN, plus structure.

530,737 double mutants of residues 2–56 with the data set's own training / validation / test split and a log2
enrichment ``y``. Modalities built here:

- ``mutant``: the 55-residue mutant sequence (``sequence``);
- ``structure``: for each mutated site, Cβ contacts and burial computed from ``1pga.pdb`` and PSIPRED secondary
  structure probabilities from ``gb1.ss2``; for the pair, their Cβ distance, whether they touch and their
  sequence separation (``vector``);
- ``prior``: the two single-mutant effects (log2 enrichment of each single mutant relative to wild type, from
  Olson's Table S2 counts, computed the way ``y`` is) and their sum, the additive prediction (``vector``).

Residue numbering: Olson/MAVE-NN residue i = PDB residue i (the sequence string index is i − 2). Olson's
construct carries T2Q, so the PDB's residue 2 (T) differs from the wild type (Q); structure features are
looked up by position only.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import pandas as pd

from ..config import ModalityConfig, SequenceOptions, VectorOptions
from ..errors import DataError
from .base import DatasetInfo, LoadedDataset, LocalBuild, RemoteFile, fetch_file, github_raw, register
from .variant_features import AMINO_ACIDS, VariantSkips, pair_distances, read_pdb, read_ss2, residue_structure_features

FOLDER = "variant_gb1_multiscale"
DOUBLES = "gb1_data.csv.gz"
SINGLES = "Olson2014_TableS2_singles.txt"
WILDTYPE_COUNTS = "Olson2014_TableS2_wildtype.txt"
PDB = "1pga.pdb"
SS2 = "gb1.ss2"
FASTA = "GB1_sequence.fasta"
FIRST = 2  # residue number of the first character of ``x``
SITE_FEATURES = ["contacts", "burial", "atoms_10A", "p_coil", "p_helix", "p_strand"]
PAIR_FEATURES = ["distance", "touching", "log_separation"]
PRIOR = ["single_a", "single_b", "additive"]
CONTACT = 8.0


def wild_type(root: Path) -> str:
    """Olson's wild type, residues 2–56 (``GB1_sequence.fasta`` starts at residue 1, M)."""
    lines = [l.strip() for l in (root / FASTA).read_text().splitlines() if l.strip() and not l.startswith(">")]
    return "".join(lines)[FIRST - 1:]


def single_effects(root: Path, wt: str) -> np.ndarray:
    """[55, 20] log2 enrichment of each single mutant relative to wild type (NaN where unmeasured; 0 for wild type).

    ``log2((selected + 1) / (input + 1)) − log2(wt selected / wt input)``, as MAVE-NN computes the doubles' ``y``.
    A single mutant whose wild-type letter differs from the sequence, or whose position lies outside it, is a
    ``DataError`` naming the row.
    """
    text = (root / SINGLES).read_text().replace("\r\n", "\n").replace("\r", "\n")
    rows = [l.split("\t") for l in text.splitlines() if l.strip()]
    wt_counts = (root / WILDTYPE_COUNTS).read_text().replace("\r", "\n").split("\n")
    wt_in, wt_sel = (float(v) for v in wt_counts[1].split("\t")[:2])
    table = root / SINGLES
    out = np.full((len(wt), len(AMINO_ACIDS)), np.nan)
    for i, (ref, pos, alt, n_in, n_sel) in enumerate(rows[1:], start=1):
        p = int(pos) - FIRST
        if not 0 <= p < len(wt):
            raise DataError(f"position {pos} is outside the sequence (residues {FIRST}–{FIRST + len(wt) - 1})", row=i, column="Position", table=table)
        if wt[p] != ref:
            raise DataError(f"reference residue {ref} at position {pos} does not match the sequence, which has {wt[p]}", row=i, column="WT amino acid", table=table)
        if alt not in AMINO_ACIDS:
            raise DataError(f"unknown residue letter {alt!r}", row=i, column="Mutation", table=table)
        out[p, AMINO_ACIDS.index(alt)] = np.log2((float(n_sel) + 1) / (float(n_in) + 1)) - np.log2(wt_sel / wt_in)
    for p, letter in enumerate(wt):
        out[p, AMINO_ACIDS.index(letter)] = 0.0
    return out


def encode_sequences(sequences: pd.Series, length: int, table: str, on_error: str) -> tuple[np.ndarray, np.ndarray, VariantSkips]:
    """Sequences → [n, length] residue indices and the mask of usable rows; a wrong length or letter is an error or a skip."""
    skips = VariantSkips()
    lookup = np.full(256, -1, dtype=np.int16)
    for j, a in enumerate(AMINO_ACIDS):
        lookup[ord(a)] = j
    values = sequences.astype(str).to_numpy()
    lengths = np.fromiter((len(s) for s in values), dtype=np.int64, count=len(values))
    ok = lengths == length
    codes = np.full((len(values), length), -1, dtype=np.int16)
    if ok.any():
        raw = np.frombuffer("".join(values[ok]).encode("ascii", errors="replace"), dtype=np.uint8).reshape(-1, length)
        codes[ok] = lookup[raw]
    bad_letter = ok & (codes < 0).any(axis=1)
    for i in np.flatnonzero(~ok | bad_letter):
        row = sequences.index[i]
        if not ok[i]:
            reason = f"sequence has {lengths[i]} residues, expected {length}"
        else:
            letters = sorted({c for c in values[i] if c not in AMINO_ACIDS})
            reason = f"unknown residue letter(s) {''.join(letters)!r} (expected one of {AMINO_ACIDS})"
        if on_error == "raise":
            raise DataError(reason, row=row, column="x", table=table)
        skips.add(row, reason)
    return codes, ~(~ok | bad_letter), skips


def gb1_table(
    root: Path, table: Optional[pd.DataFrame] = None, pdb: Optional[Path] = None, on_error: Literal["raise", "skip"] = "raise",
    max_mutations: int = 2,
) -> tuple[pd.DataFrame, VariantSkips]:
    """The doubles table (or ``table``, same columns ``x`` and ``y``) with the modality columns added.

    Rows must differ from the wild type at 1..``max_mutations`` positions, all inside the structure (``pdb``,
    default ``1pga.pdb``); others raise a ``DataError`` naming the row, or are skipped and counted.
    """
    source = str(root / DOUBLES) if table is None else "variants"
    frame = pd.read_csv(root / DOUBLES) if table is None else table.copy()
    wt = wild_type(root)
    codes, ok, skips = encode_sequences(frame["x"], len(wt), source, on_error)
    wt_codes = np.array([AMINO_ACIDS.index(a) for a in wt])
    mutated = (codes != wt_codes) & ok[:, None]
    counts = mutated.sum(axis=1)
    structure = read_pdb(pdb or root / PDB)
    covered = np.array([FIRST + p in structure.numbers for p in range(len(wt))])
    outside = ok & (mutated & ~covered).any(axis=1)
    wrong_count = ok & ((counts < 1) | (counts > max_mutations))
    for i in np.flatnonzero(outside | wrong_count):
        row = frame.index[i]
        if wrong_count[i]:
            reason = f"{counts[i]} mutations from the wild type, expected 1 to {max_mutations}"
        else:
            pos = [FIRST + p for p in np.flatnonzero(mutated[i] & ~covered)]
            reason = f"position(s) {', '.join(map(str, pos))} outside the structure (residues {structure.numbers[0]}–{structure.numbers[-1]})"
        if on_error == "raise":
            raise DataError(reason, row=row, column="x", table=source)
        skips.add(row, reason)
        ok[i] = False
    frame, codes, mutated = frame[ok].reset_index(drop=True), codes[ok], mutated[ok]
    # first and last mutated site (equal for a single mutant)
    site_a = mutated.argmax(axis=1)
    site_b = mutated.shape[1] - 1 - mutated[:, ::-1].argmax(axis=1)
    rows = np.arange(len(frame))
    singles = single_effects(root, wt)
    frame["single_a"] = singles[site_a, codes[rows, site_a]]
    frame["single_b"] = np.where(site_b != site_a, singles[site_b, codes[rows, site_b]], 0.0)
    frame["additive"] = frame["single_a"] + frame["single_b"]
    per_site = residue_structure_features(structure, contact_cutoff=CONTACT).join(read_ss2(root / SS2)[["p_coil", "p_helix", "p_strand"]])
    site_table = per_site.reindex([FIRST + p for p in range(len(wt))])[SITE_FEATURES].to_numpy(dtype=float)
    site_table = np.nan_to_num(site_table, nan=0.0)
    for j, name in enumerate(SITE_FEATURES):
        frame[f"a_{name}"] = site_table[site_a, j]
        frame[f"b_{name}"] = site_table[site_b, j]
    index, dist = pair_distances(structure)
    rows_a = np.array([index[FIRST + p] for p in site_a])
    rows_b = np.array([index[FIRST + p] for p in site_b])
    frame["distance"] = dist[rows_a, rows_b]
    frame["touching"] = ((frame["distance"] < CONTACT) & (site_a != site_b)).astype(float)
    frame["log_separation"] = np.log1p(site_b - site_a)
    frame["site_a"], frame["site_b"] = site_a + FIRST, site_b + FIRST
    return frame, skips


def structure_columns() -> list[str]:
    return [f"{s}_{n}" for s in "ab" for n in SITE_FEATURES] + PAIR_FEATURES


def gb1_modalities(dim: int = 32) -> list[ModalityConfig]:
    """Mutant sequence, structure of the two sites, single-mutant prior; small encoders for 0.5 M rows on a CPU."""
    return [
        ModalityConfig(
            name="mutant", kind="sequence", columns=["x"], options=SequenceOptions(alphabet=AMINO_ACIDS, max_len=55),
            encoder={"name": "sequence_positional_cnn", "dim": dim, "options": {"embed_dim": 8, "filters": 16, "kernel_size": 3}},
            dedupe=False,
        ),
        ModalityConfig(name="structure", kind="vector", columns=structure_columns(), options=VectorOptions(), encoder={"dim": dim, "options": {"hidden": [64]}}, dedupe=False),
        ModalityConfig(name="prior", kind="vector", columns=PRIOR, options=VectorOptions(), encoder={"dim": dim, "options": {"hidden": [32]}}, dedupe=False),
    ]


def load_gb1(roots: dict[str, Path], train_rows: Optional[int] = None, seed: int = 0) -> LoadedDataset:
    """Train = the ``training`` rows (plus ``validation``, marked in column ``set``), test = ``test``.

    ``train_rows`` keeps a random subsample (``seed``) of the training rows, for machines too slow for 478 k.
    """
    root = roots[FOLDER]
    frame, _ = gb1_table(root)
    train = frame[frame["set"] != "test"]
    if train_rows is not None and train_rows < len(train):
        train = train.sample(n=train_rows, random_state=seed)
    return LoadedDataset(
        name="gb1",
        description=INFO.description,
        train=train.reset_index(drop=True),
        test=frame[frame["set"] == "test"].reset_index(drop=True),
        target="y",
        task="regression",
        modalities=gb1_modalities(),
        root=root,
    )


# ----------------------------------------------------------------------------- files
_MAVENN_WHEEL = RemoteFile(
    "mavenn-1.1.4-py3-none-any.whl",
    "https://files.pythonhosted.org/packages/6e/88/142ac4de8efbcf3dc6a314cce970e2616817a017afc943a7c0253f69b5dc/mavenn-1.1.4-py3-none-any.whl",
    "b54077ee40a94892ace26b609b1b6778bc906e14483d7e74f8258c9731871e57",
)
_FROM_WHEEL = {
    DOUBLES: "c1334244ab0112f55c2a850840e8126d2d285d91a4623c3306e02b7f7a540eb7",
    "nisthal_data.csv.gz": "4a51fb30dce9b57786c4b1ad7630cfd03f44cbe7b4a7d5430e278884936826fa",
}
_DMS2STRUCTURE = "3c1976b78a743d4d4c73921f047648500e671c8e"
_FROM_GITHUB = (
    (PDB, "PDB/1pga.pdb", "7ff2f868de645d8a69be2ffb83c56080573ed76fd5f0e5f578cadd2c2936a53f"),
    (SS2, "PSIPRED/gb1.ss2", "106f2aea1947562bf94d63f41640c1cd3621fb22644f06011b720627d847d566"),
    (FASTA, "GB1_sequence.fasta", "caa6ac7db0b24b2548893f6bd4ec6c606946dfe6299ddb44d3f7b346ba1fe0b9"),
    (SINGLES, "Olson2014_TableS2_singles.txt", "51d5a821fd0794cdb298907aafd8d17a292ca7546e44c920d915875099825c49"),
    (WILDTYPE_COUNTS, "Olson2014_TableS2_wildtype.txt", "aa2480a7b7c1a5d6f3e0cc77c7caf3e7740d59e5f9848439b9211007323e4d55"),
)
_GITHUB_FILES = tuple(RemoteFile(name, github_raw("lehner-lab/DMS2structure", _DMS2STRUCTURE, f"GB1/dataset/{path}"), sha) for name, path, sha in _FROM_GITHUB)


def _build(folder: Path) -> None:
    """Fetch the structure files from GitHub and the two tables from the checksummed MAVE-NN 1.1.4 wheel on PyPI."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    for remote in _GITHUB_FILES:
        if not (folder / remote.path).is_file():
            fetch_file(remote, folder)
    wheel = fetch_file(_MAVENN_WHEEL, folder)
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name, sha in _FROM_WHEEL.items():
                data = zf.read(f"mavenn/examples/datasets/{name}")
                if hashlib.sha256(data).hexdigest() != sha:
                    raise DataError(f"checksum mismatch for {name} inside {wheel.name}", file=wheel)
                (folder / name).write_bytes(data)
    finally:
        wheel.unlink(missing_ok=True)


INFO = register(
    DatasetInfo(
        name="gb1",
        description="Protein G B1 domain: 530,737 double mutants (Olson et al. 2014, log2 enrichment), MAVE-NN's "
        "training/validation/test split; mutant sequence, structure (1PGA contacts and burial, PSIPRED) and single-mutant prior.",
        reference="MAVE-NN (Tareen et al. 2022, Genome Biol 23:98) trains additive and pairwise global-epistasis models on this split.",
        licence="MIT (MAVE-NN; lehner-lab/DMS2structure); data from Olson et al. 2014 (Curr Biol 24:2643); structure RCSB 1PGA.",
        folders={FOLDER: (*_GITHUB_FILES, *(RemoteFile(n, _MAVENN_WHEEL.url, s) for n, s in _FROM_WHEEL.items()))},
        loader=load_gb1,
        builds={FOLDER: LocalBuild(marker=DOUBLES, build=_build)},
    )
)
