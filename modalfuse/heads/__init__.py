"""Task heads, one file each, created by name from ``HEADS``: binary, multiclass, margin (SVM), evidential
(Dirichlet), regression, gaussian (mean + variance). ``default`` picks the task's plain head."""
from ..errors import ConfigError
from .base import HEADS, Head
from .classification import BinaryHead, MulticlassHead
from .evidential import EvidentialHead
from .gaussian import GaussianHead
from .margin import MarginHead
from .regression import RegressionHead


def resolve_head(task: str, n_outputs: int, kind: str = "default") -> str:
    """The registry name of the head for ``task``: ``kind``, or the task's plain head for ``default``."""
    if kind == "default":
        return "regression" if task == "regression" else ("binary" if n_outputs == 2 else "multiclass")
    head_task = HEADS.get(kind).task
    if head_task != task:
        allowed = ["default"] + [n for n in HEADS.names() if HEADS.get(n).task == task]
        raise ConfigError(f"model.head: {kind!r} does not apply to {task}; use one of {allowed}")
    return kind


def averages_alike(a: type, b: type) -> bool:
    """Whether outputs of heads of classes ``a`` and ``b`` combine by one ``average`` (e.g. multiclass and margin)."""
    return all(getattr(a, name, None) is getattr(b, name, None) for name in ("average", "proba", "predict", "outputs"))


def make_head(
    task: str, n_outputs: int, in_dim: int | None, hidden: int, dropout: float, kind: str = "default",
    options: dict | None = None,
) -> Head:
    """The head ``kind`` (or the task's plain head) with its validated ``options``."""
    name = resolve_head(task, n_outputs, kind)
    n = 1 if task == "regression" else n_outputs
    return HEADS.create(name, options or {}, "model.head", in_dim=in_dim, hidden=hidden, n_outputs=n, dropout=dropout)


__all__ = ["HEADS", "Head", "BinaryHead", "MulticlassHead", "EvidentialHead", "GaussianHead", "MarginHead", "RegressionHead",
           "averages_alike", "make_head", "resolve_head"]
