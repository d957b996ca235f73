"""Task heads: binary, multiclass and regression."""
from .base import Head
from .classification import BinaryHead, MulticlassHead
from .regression import RegressionHead


def make_head(task: str, n_outputs: int, in_dim: int | None, hidden: int, dropout: float) -> Head:
    """The head for a task: binary when there are two classes, else multiclass; regression."""
    if task == "regression":
        return RegressionHead(in_dim, hidden, 1, dropout)
    cls = BinaryHead if n_outputs == 2 else MulticlassHead
    return cls(in_dim, hidden, n_outputs, dropout)


__all__ = ["Head", "BinaryHead", "MulticlassHead", "RegressionHead", "make_head"]
