"""Features for protein variant-effect data: mutation parsing and checks, sequence windows, structure and
secondary structure read from plain files.

Used by the ``brca1`` and ``gb1`` datasets. Everything here is small and dependency-free (numpy, pandas):
a PDB ATOM-record reader (no biopython), a PSIPRED ``.ss2`` reader, residue contact counts and burial from
Cβ coordinates, and the checks that turn a bad variant (an unknown residue letter, a position the reference
or the structure does not cover, a reference residue that does not match the sequence) into a
:class:`~modalfuse.errors.DataError` naming the row, or a counted skip.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Optional

import numpy as np
import pandas as pd

from ..errors import DataError

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: fills window positions whose residue is unknown (outside the protein or not covered by the reference)
GAP = "-"
#: what a window cell may hold: the 20 amino acids and the gap
WINDOW_ALPHABET = AMINO_ACIDS + GAP
THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G", "HIS": "H", "ILE": "I",
    "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
}
_MUTATION = re.compile(r"^([A-Za-z])(\d+)([A-Za-z])$")

OnError = Literal["raise", "skip"]


@dataclass
class VariantSkips:
    """Rows dropped by a variant check with ``on_error="skip"``: (row, reason) pairs, counted per reason."""

    rows: list[tuple[object, str]] = field(default_factory=list)

    def add(self, row: object, reason: str) -> None:
        self.rows.append((row, reason))

    @property
    def count(self) -> int:
        return len(self.rows)

    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, reason in self.rows:
            key = reason.split(":")[0]
            out[key] = out.get(key, 0) + 1
        return out


def parse_mutation(code: str) -> tuple[str, int, str]:
    """``"I21L"`` → ``("I", 21, "L")``; a malformed code or a letter outside the 20 amino acids is a ``DataError``."""
    match = _MUTATION.match(str(code).strip())
    if not match:
        raise DataError(f"mutation {code!r} is not of the form <reference residue><position><alternative residue>, e.g. I21L")
    ref, pos, alt = match.group(1).upper(), int(match.group(2)), match.group(3).upper()
    for letter in (ref, alt):
        if letter not in AMINO_ACIDS:
            raise DataError(f"mutation {code!r}: unknown residue letter {letter!r} (expected one of {AMINO_ACIDS})")
    return ref, pos, alt


def check_variants(
    frame: pd.DataFrame,
    reference: Mapping[int, str],
    *,
    ref: str = "aa_ref",
    pos: str = "aa_pos",
    alt: str = "aa_alt",
    covered: Optional[set[int]] = None,
    covered_name: str = "the structure",
    table: Optional[str] = None,
    on_error: OnError = "raise",
) -> tuple[pd.DataFrame, VariantSkips]:
    """Keep the rows whose variant is usable; raise on the first bad one (``on_error="raise"``) or skip and count it.

    A row is bad when its reference or alternative residue is not one of the 20 amino acids, its position is
    not an integer the reference covers (or, with ``covered``, that ``covered_name`` covers), or its reference
    residue differs from ``reference[position]``. Errors name the table, the row (the frame's index) and the column.
    """
    skips = VariantSkips()
    keep = np.ones(len(frame), dtype=bool)
    for i, (row, r, p, a) in enumerate(zip(frame.index, frame[ref], frame[pos], frame[alt])):
        problem: Optional[tuple[str, str]] = None
        r_s, a_s = str(r).strip().upper(), str(a).strip().upper()
        if r_s not in AMINO_ACIDS:
            problem = (ref, f"unknown residue letter {r!r} (expected one of {AMINO_ACIDS})")
        elif a_s not in AMINO_ACIDS:
            problem = (alt, f"unknown residue letter {a!r} (expected one of {AMINO_ACIDS})")
        else:
            try:
                p_i = int(p)
                if p_i != float(p):
                    raise ValueError
            except (TypeError, ValueError):
                p_i = None
                problem = (pos, f"position {p!r} is not an integer")
            if problem is None:
                if p_i not in reference:
                    problem = (pos, f"position {p_i} is outside the reference sequence")
                elif covered is not None and p_i not in covered:
                    problem = (pos, f"position {p_i} is outside {covered_name}")
                elif reference[p_i] != r_s:
                    problem = (ref, f"reference residue {r_s} at position {p_i} does not match the sequence, which has {reference[p_i]}")
        if problem is not None:
            if on_error == "raise":
                raise DataError(problem[1], row=row, column=problem[0], table=table)
            skips.add(row, problem[1])
            keep[i] = False
    return frame[keep], skips


def reference_from_variants(frames: list[tuple[pd.DataFrame, str, str, str]]) -> dict[int, str]:
    """Reconstruct a reference protein ``{position: residue}`` from the reference residues variant tables name.

    ``frames`` holds ``(table, position column, residue column, source name)``. Only positions some table
    names are covered; nothing is guessed. Two tables disagreeing about a position is a ``DataError``.
    """
    out: dict[int, str] = {}
    seen: dict[int, str] = {}
    for frame, pos_col, ref_col, source in frames:
        for row, p, r in zip(frame.index, frame[pos_col], frame[ref_col]):
            p, r = int(p), str(r).strip().upper()
            if r not in AMINO_ACIDS:
                raise DataError(f"unknown residue letter {r!r}", row=row, column=ref_col, table=source)
            if p in out and out[p] != r:
                raise DataError(
                    f"reference residue {r} at position {p} contradicts {out[p]} given by {seen[p]}", row=row, column=ref_col, table=source
                )
            out[p], seen[p] = r, source
    return dict(sorted(out.items()))


def covered_ranges(positions) -> list[tuple[int, int]]:
    """Runs of consecutive positions, e.g. ``[(1, 103), (1396, 1863)]``."""
    runs: list[tuple[int, int]] = []
    for p in sorted(positions):
        if runs and p == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    return runs


def residue_window(reference: Mapping[int, str], position: int, half: int) -> str:
    """The ``2·half + 1`` reference residues centred on ``position``; unknown neighbours are :data:`GAP`."""
    return "".join(reference.get(p, GAP) for p in range(position - half, position + half + 1))


# ----------------------------------------------------------------------------- structure files

@dataclass
class Structure:
    """One chain of a PDB file: residue numbers, one-letter residues and per-residue atom coordinates."""

    numbers: list[int]
    residues: str
    atoms: list[dict[str, np.ndarray]]

    def index(self, position: int) -> int:
        try:
            return self.numbers.index(position)
        except ValueError:
            raise DataError(f"position {position} is outside the structure (residues {self.numbers[0]}–{self.numbers[-1]})") from None

    def beta_coordinates(self) -> np.ndarray:
        """Cβ per residue (Cα for glycine or a residue without Cβ): [n, 3]."""
        return np.stack([a.get("CB", a.get("CA")) for a in self.atoms])


def read_pdb(path: str | Path, chain: Optional[str] = None, model: int = 1) -> Structure:
    """Read the ATOM records of one chain (the first, unless named) of one model from a PDB file.

    Alternate locations other than the first are dropped, hydrogens ignored. A file without ATOM records, or an
    atom line whose coordinates do not parse, is a ``DataError`` naming the file and line.
    """
    path = Path(path)
    numbers: list[int] = []
    residues: list[str] = []
    atoms: list[dict[str, np.ndarray]] = []
    current_model = 1
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("MODEL"):
            current_model = int(line[10:14] or 1)
        if line.startswith("ENDMDL") and current_model == model and numbers:
            break
        if not line.startswith("ATOM") or current_model != model:
            continue
        alt, chain_id = line[16], line[21]
        if alt not in (" ", "A"):
            continue
        if chain is None:
            chain = chain_id
        if chain_id != chain:
            continue
        name, element = line[12:16].strip(), line[76:78].strip()
        if element == "H" or name.startswith("H"):
            continue
        try:
            number = int(line[22:26])
            xyz = np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])])
        except ValueError:
            raise DataError(f"line {lineno}: ATOM record with unreadable residue number or coordinates", file=path) from None
        if not numbers or numbers[-1] != number:
            numbers.append(number)
            residues.append(THREE_TO_ONE.get(line[17:20], "X"))
            atoms.append({})
        atoms[-1][name] = xyz
    if not numbers:
        raise DataError("no ATOM records" + (f" for chain {chain!r}" if chain else ""), file=path)
    return Structure(numbers, "".join(residues), atoms)


def residue_structure_features(structure: Structure, contact_cutoff: float = 8.0, burial_radius: float = 10.0) -> pd.DataFrame:
    """Per residue: contacts (other residues with Cβ within ``contact_cutoff`` Å, at least 3 apart in sequence),
    burial (Cβ neighbours within ``burial_radius`` Å, a standard proxy for depth) and heavy atoms within 10 Å of
    the side chain's Cβ. Indexed by residue number."""
    beta = structure.beta_coordinates()
    dist = np.linalg.norm(beta[:, None] - beta[None], axis=2)
    idx = np.arange(len(beta))
    far = np.abs(idx[:, None] - idx[None]) >= 3
    heavy = np.concatenate([np.stack(list(a.values())) for a in structure.atoms])
    heavy_near = (np.linalg.norm(beta[:, None] - heavy[None], axis=2) < 10.0).sum(axis=1)
    return pd.DataFrame(
        {
            "residue": list(structure.residues),
            "contacts": ((dist < contact_cutoff) & far).sum(axis=1),
            "burial": (dist < burial_radius).sum(axis=1) - 1,
            "atoms_10A": heavy_near,
        },
        index=pd.Index(structure.numbers, name="position"),
    )


def pair_distances(structure: Structure) -> tuple[dict[int, int], np.ndarray]:
    """Cβ–Cβ distance matrix and ``{residue number: row}``."""
    beta = structure.beta_coordinates()
    return {n: i for i, n in enumerate(structure.numbers)}, np.linalg.norm(beta[:, None] - beta[None], axis=2)


def read_ss2(path: str | Path) -> pd.DataFrame:
    """PSIPRED ``.ss2``: per residue the predicted state (C/H/E) and its three probabilities, indexed by position."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or line.startswith("#"):
            continue
        if len(parts) != 6:
            raise DataError(f"line {lineno}: expected 6 fields (position residue state pC pH pE), got {len(parts)}", file=path)
        try:
            rows.append((int(parts[0]), parts[1], parts[2], float(parts[3]), float(parts[4]), float(parts[5])))
        except ValueError:
            raise DataError(f"line {lineno}: unreadable number in {line.strip()!r}", file=path) from None
    frame = pd.DataFrame(rows, columns=["position", "residue", "ss", "p_coil", "p_helix", "p_strand"])
    return frame.set_index("position")
