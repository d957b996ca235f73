"""Read tables (CSV, TSV, Parquet) or in-memory arrays into a DataFrame of cells."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError



def read_table(path: str | Path, na_values: Sequence[str] | None = None) -> pd.DataFrame:
    """CSV/TSV/Parquet by extension.

    Only an empty cell is missing: words such as "NA", "None" or "null" stay values (a category or class
    named "NA" keeps its rows) unless listed in ``na_values`` (``data.na_values``). Repeated column names are
    refused rather than renamed (pandas would read the second "age" as "age.1").
    """
    path = Path(path)
    if not path.exists():
        raise DataError("table not found", table=path)
    if path.is_dir():
        raise DataError("is a folder; expected a .csv, .tsv or .parquet file", table=path)
    suffix = path.suffix.lower()
    na = [""] + [str(v) for v in (na_values or [])]
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            _check_header(path, sep)
            try:
                return pd.read_csv(path, sep=sep, keep_default_na=False, na_values=na)
            except UnicodeDecodeError:
                return _read_undecodable(path, sep, na)
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            _refuse_duplicates(list(frame.columns), path)
            if na_values:
                frame = frame.replace({v: np.nan for v in na_values})
            return frame
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text: {_bad_byte(path, err)}; save the table as UTF-8", table=path) from None
    except pd.errors.EmptyDataError:
        raise DataError("the table is empty (no header row)", table=path) from None
    except (pd.errors.ParserError, OSError, ValueError) as err:
        raise DataError(f"cannot read table: {str(err).splitlines()[0]}", table=path) from None
    raise DataError(f"unsupported table format {suffix!r}; expected .csv, .tsv or .parquet", table=path)


def _check_header(path: Path, sep: str) -> None:
    with open(path, "rb") as fh:  # the header line only: bytes further on that are not UTF-8 fail their own rows
        first = fh.readline()
    text = first.decode("utf-8-sig")  # UnicodeDecodeError: read_table names the line
    names = next(csv.reader([text], delimiter=sep), [])
    _refuse_duplicates(names, path)


def _refuse_duplicates(names: list, path: Path | str) -> None:
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise DataError(f"column name(s) {repeated} appear more than once in the header; give every column its own name", table=path)


UNDECODABLE = "undecodable"  # frame.attrs key: {row label: (column, reason)} for cells that held bytes that are not UTF-8


def _read_undecodable(path: Path, sep: str, na: list[str]) -> pd.DataFrame:
    """A table with bytes that are not UTF-8 (the header must be UTF-8): the bad bytes are read as U+FFFD and
    the rows that hold one are listed in ``frame.attrs``, so each fails alone (``on_error: skip`` skips it)
    instead of the whole table."""
    import io

    raw = path.read_bytes()
    bad_lines = {}
    for line_no, line in enumerate(raw.splitlines(), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            bad_lines[line_no] = line[err.start]
    cells = pd.read_csv(io.StringIO(raw.decode("utf-8-sig", errors="replace")), sep=sep, dtype=str, keep_default_na=False)
    flagged: dict = {}
    for column in cells.columns:
        hits = cells[column].str.contains("\ufffd", regex=False).to_numpy(dtype=bool)
        for label in cells.index[hits]:
            line = label + 2
            byte = f"byte 0x{bad_lines[line]:02x}" if line in bad_lines else "bytes that are not UTF-8"
            flagged.setdefault(label, (column, f"not UTF-8 text: the cell held {byte} (line {line}); save the table as UTF-8"))
        if hits.any():  # a valid stand-in, so the column is typed as in a clean file (the row fails in any case)
            good = cells.loc[~hits, column]
            cells.loc[hits, column] = good.iloc[0] if len(good) else ""
    text = io.StringIO()
    cells.to_csv(text, sep=sep, index=False)
    text.seek(0)
    frame = pd.read_csv(text, sep=sep, keep_default_na=False, na_values=na)
    frame.attrs[UNDECODABLE] = flagged
    return frame


def _bad_byte(path: Path, err: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 sits: data row (0-based, as in other messages), line and column."""
    with open(path, "rb") as fh:
        for line_no, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                return f"row {line_no - 2} (line {line_no}, byte {bad.start + 1}) holds byte 0x{line[bad.start]:02x}"
    return str(err)


def frame_from_arrays(arrays: Mapping[str, Any]) -> pd.DataFrame:
    """Columns from arrays of equal length; a 2-D+ array becomes one cell per row (an ndarray)."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"arrays differ in length: {lengths}")
    columns = {}
    for name, value in arrays.items():
        value = np.asarray(value) if not isinstance(value, (list, pd.Series)) else value
        if isinstance(value, np.ndarray) and value.ndim > 1:
            cells = np.empty(len(value), dtype=object)
            cells[:] = list(value)
            columns[name] = cells
        else:
            columns[name] = value
    return pd.DataFrame(columns)


@dataclass
class Table:
    """A frame read from a file (or a chunk of one): its name for messages and the folder its relative paths start from."""

    frame: pd.DataFrame
    name: str | None = None
    base_dir: Path | None = None


def as_frame(data: Any, na_values: Sequence[str] | None = None) -> tuple[pd.DataFrame, str | None, Path | None]:
    """(frame, table name for messages, folder that relative file paths resolve against)."""
    if isinstance(data, Table):
        return data.frame, data.name, data.base_dir
    if isinstance(data, pd.DataFrame):
        _refuse_duplicates(list(data.columns), "the data frame")
        return data, None, None
    from .singlecell import is_singlecell_object, is_singlecell_path, read_cells

    if isinstance(data, (str, Path)):
        path = Path(data)
        if is_singlecell_path(path):
            return read_cells(path)[0], str(path), path.resolve().parent
        return read_table(path, na_values), str(path), path.resolve().parent
    if is_singlecell_object(data):
        return read_cells(data)[0], None, None
    if isinstance(data, Mapping):
        return frame_from_arrays(data), None, None
    raise TypeError(f"expected a DataFrame, a table path, a mapping of arrays, AnnData/MuData or a sparse matrix, got {type(data).__name__}")


def iter_table(data: Any, chunk_size: int, na_values: Sequence[str] | None = None):
    """Yield ``Table`` chunks of at most ``chunk_size`` rows, numbered on across chunks: CSV/TSV read in chunks,
    Parquet by row groups (split further when larger), a DataFrame or mapping by slices. Only one chunk is in memory."""
    if isinstance(data, (str, Path)) and Path(data).suffix.lower() in (".csv", ".txt", ".tsv", ".parquet", ".pq"):
        path = Path(data)
        if not path.is_file():
            read_table(path)  # the one-line error for a missing file or a folder
        name, base = str(path), path.resolve().parent
        if path.suffix.lower() in (".parquet", ".pq"):
            yield from _parquet_chunks(path, chunk_size, na_values, name, base)
            return
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        _check_header(path, sep)
        na = [""] + [str(v) for v in (na_values or [])]
        try:
            for frame in pd.read_csv(path, sep=sep, keep_default_na=False, na_values=na, chunksize=chunk_size):
                yield Table(frame, name, base)
        except UnicodeDecodeError as err:
            raise DataError(f"not UTF-8 text: {_bad_byte(path, err)}; save the table as UTF-8", table=path) from None
        except pd.errors.EmptyDataError:
            raise DataError("the table is empty (no header row)", table=path) from None
        except (pd.errors.ParserError, ValueError) as err:
            raise DataError(f"cannot read table: {str(err).splitlines()[0]}", table=path) from None
        return
    frame, name, base = as_frame(data, na_values)
    for start in range(0, max(len(frame), 1), chunk_size):
        yield Table(frame.iloc[start:start + chunk_size], name, base)


def _parquet_chunks(path: Path, chunk_size: int, na_values, name: str, base: Path):
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read table: {str(err).splitlines()[0]}", table=path) from None
    _refuse_duplicates(list(source.schema_arrow.names), path)
    start = 0
    for group in range(source.num_row_groups):
        for batch in source.iter_batches(batch_size=chunk_size, row_groups=[group]):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            if na_values:
                frame = frame.replace({v: np.nan for v in na_values})
            start += len(frame)
            yield Table(frame, name, base)


def count_rows(data: Any) -> int | None:
    """Rows of a Parquet file (from its metadata) or a frame; None for CSV (that would read it)."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.suffix.lower() in (".parquet", ".pq") and path.is_file():
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        return None
    if isinstance(data, Table):
        return len(data.frame)
    if isinstance(data, pd.DataFrame):
        return len(data)
    return None
