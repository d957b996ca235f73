"""Task heads: binary, multiclass, evidential (Dirichlet), regression, Gaussian regression (mean + variance)."""
from .base import Head
from .classification import BinaryHead, MulticlassHead
from .evidential import EvidentialHead
from .gaussian import GaussianHead
from .regression import RegressionHead


def make_head(
    task: str, n_outputs: int, in_dim: int | None, hidden: int, dropout: float, kind: str = "default", gaussian_beta: float = 0.0
) -> Head:
    """The head for a task and kind: binary/multiclass or evidential; regression or gaussian."""
    if task == "regression":
        if kind == "gaussian":
            return GaussianHead(in_dim, hidden, 1, dropout, gaussian_beta)
        return RegressionHead(in_dim, hidden, 1, dropout)
    if kind == "evidential":
        return EvidentialHead(in_dim, hidden, n_outputs, dropout)
    cls = BinaryHead if n_outputs == 2 else MulticlassHead
    return cls(in_dim, hidden, n_outputs, dropout)


__all__ = ["Head", "BinaryHead", "MulticlassHead", "EvidentialHead", "GaussianHead", "RegressionHead", "make_head"]
