"""Errors that name where bad input came from (file, row, column or config key)."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ModalfuseError(Exception):
    """Base class for every error this library raises on purpose."""


class ConfigError(ModalfuseError):
    """A configuration value is missing, unknown or of the wrong type."""


class DataError(ModalfuseError):
    """A value in the input data cannot be used.

    Carries the table file, the row, the column and the file behind the cell (image/audio),
    so that the message tells the user exactly what to fix.
    """

    def __init__(
        self,
        reason: str,
        *,
        row: object | None = None,
        column: str | None = None,
        table: str | Path | None = None,
        file: str | Path | None = None,
    ) -> None:
        self.reason = reason
        self.row = row
        self.column = column
        self.table = str(table) if table is not None else None
        self.file = str(file) if file is not None else None
        super().__init__(self.describe())

    def describe(self) -> str:
        where = []
        if self.table:
            where.append(self.table)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.file:
            where.append(f"file {self.file}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def located(self, *, row: object = None, column: str | None = None, table: str | Path | None = None) -> "DataError":
        """Return a copy with the missing location fields filled in."""
        return DataError(
            self.reason,
            row=self.row if self.row is not None else row,
            column=self.column or column,
            table=self.table or table,
            file=self.file,
        )


class NotFittedError(ModalfuseError, RuntimeError):
    """An estimator asked to predict, embed or save before ``fit`` or ``load``."""


def fitted(net: T | None) -> T:
    """``net``, or NotFittedError when the estimator holds none yet."""
    if net is None:
        raise NotFittedError("the model is not fitted: call fit() or load() first")
    return net


class RequestError(ModalfuseError, ValueError):
    """A request field is invalid: ``field`` names it (``records[0].pixels``), ``expected`` says what fits."""

    def __init__(self, field: str, message: str, expected: str | None = None) -> None:
        self.field, self.message, self.expected = field, message, expected
        super().__init__(f"{field}: {message}")

    def to_dict(self) -> dict:
        out = {"field": self.field, "message": self.message}
        if self.expected:
            out["expected"] = self.expected
        return out
