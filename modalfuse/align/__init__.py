"""Shared embedding space: contrastive alignment, semantic matching, cross-modal retrieval, zero-shot and few-shot prototypes."""
from .model import AlignedModel, AlignNet
from .prototypes import class_means, fit_prior, leave_one_out_priors, nearest_prototype, posterior_mean
from .semantic import SemanticMatching

__all__ = ["AlignedModel", "AlignNet", "class_means", "fit_prior", "leave_one_out_priors", "nearest_prototype", "posterior_mean", "SemanticMatching"]
