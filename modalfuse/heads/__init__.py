"""Task heads: binary, multiclass, max-margin (SVM), evidential (Dirichlet), regression, Gaussian regression (mean + variance)."""
from ..errors import ConfigError
from .base import Head
from .classification import BinaryHead, MulticlassHead
from .evidential import EvidentialHead
from .gaussian import GaussianHead
from .margin import MarginHead
from .regression import RegressionHead


def make_head(
    task: str, n_outputs: int, in_dim: int | None, hidden: int, dropout: float, kind: str = "default", gaussian_beta: float = 0.0,
    margin_l2: float = 0.0,
) -> Head:
    """The head for a task and kind: binary/multiclass, margin or evidential; regression or gaussian."""
    allowed = ("default", "gaussian") if task == "regression" else ("default", "margin", "evidential")
    if kind not in allowed:
        raise ConfigError(f"model.head: {kind!r} does not apply to {task}; use one of {list(allowed)}")
    if task == "regression":
        if kind == "gaussian":
            return GaussianHead(in_dim, hidden, 1, dropout, gaussian_beta)
        return RegressionHead(in_dim, hidden, 1, dropout)
    if kind == "evidential":
        return EvidentialHead(in_dim, hidden, n_outputs, dropout)
    if kind == "margin":
        return MarginHead(in_dim, hidden, n_outputs, dropout, margin_l2)
    cls = BinaryHead if n_outputs == 2 else MulticlassHead
    return cls(in_dim, hidden, n_outputs, dropout)


__all__ = ["Head", "BinaryHead", "MulticlassHead", "EvidentialHead", "GaussianHead", "MarginHead", "RegressionHead", "make_head"]
