"""Feature attribution inside one modality: integrated gradients (Captum), with a baseline chosen per kind.

The explained output is the probability of a class (default: the class predicted with every modality
present) or the regression output, through the full network with the sample's other modalities as they are.

Where the integration path runs, and from which baseline:

- vector: the standardised input, from zeros (the training mean);
- tabular: the encoder's concatenated input (standardised numbers, missing indicators, category
  embeddings), from the all-zero row (means, nothing missing, the missing/unknown category); scores are
  summed per column;
- image: the standardised pixels, from a Gaussian-blurred copy of the image (``baseline="blur"``) or from
  zeros, the training mean intensity (``"mean"``); scores summed over channels → [H, W];
- audio: the log-mel spectrogram the encoder computes (Captum's LayerIntegratedGradients on it), from the
  spectrogram of silence (all zeros after the encoder's per-clip normalisation) → [mels, frames];
- text and sequences: the token embeddings (LayerIntegratedGradients on the embedding layer), from the pad
  token's embedding at every position; scores summed over the embedding → one per token;
- graphs: the node (atom) features, from zeros, by a Riemann sum written here (Captum needs a tensor input,
  a batch of graphs is not one); scores summed per atom.

Memory is bounded by explaining ``batch_size`` samples at a time and letting Captum evaluate the
``n_steps`` points of the path in chunks of ``internal_batch_size`` rows; only the scores are kept.
The first ensemble member is explained.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import torch
from torch import nn

from ..data.batch import Batch
from ..data.dataset import Features
from ..data.entities import GraphSet, Indexed
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..api import MultimodalModel


@dataclass
class FeatureAttribution:
    """Integrated-gradients scores of one modality for the samples where it is present."""

    modality: str
    kind: str
    rows: list
    scores: Union[np.ndarray, list]  # [n, ...] per kind; a list of per-atom arrays for graphs
    target: np.ndarray
    delta: np.ndarray  # completeness error per sample: Σ scores − (f(x) − f(baseline))
    feature_names: Optional[list[str]] = None
    tokens: Optional[np.ndarray] = None  # token ids for text / sequences
    info: dict[str, Any] = field(default_factory=dict)

    def ranking(self) -> list[tuple[str, float]]:
        """Features by mean |score| over samples, largest first (vector / tabular)."""
        if self.feature_names is None:
            raise ConfigError(f"ranking: {self.kind} scores have no named features")
        mean = np.abs(np.asarray(self.scores)).mean(axis=0)
        order = np.argsort(-mean, kind="stable")
        return [(self.feature_names[i], float(mean[i])) for i in order]


def _encoder_input(features: Features, name: str) -> Any:
    x = features.inputs[name]
    return x.dense() if isinstance(x, Indexed) and isinstance(x.values, torch.Tensor) else x


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of [n, c, h, w] images (reflect padding)."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = images.shape[1]
    pad = min(radius, images.shape[-1] - 1, images.shape[-2] - 1)
    if pad < radius:
        k = k[radius - pad: radius + pad + 1] / k[radius - pad: radius + pad + 1].sum()
    x = nn.functional.pad(images, (pad, pad, pad, pad), mode="reflect")
    x = nn.functional.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _embedding_layer(encoder: nn.Module) -> nn.Embedding:
    layer = getattr(encoder, "embed", None)
    if isinstance(layer, nn.Embedding):
        return layer
    for module in encoder.modules():
        if isinstance(module, nn.Embedding):
            return module
    raise ConfigError(f"integrated gradients: the {type(encoder).__name__} encoder has no token embedding layer")


def _plan(model: "MultimodalModel", name: str, kind: str, baseline: Optional[str]):
    """(layer or None, attribute_to_layer_input, baseline function of the raw inputs, reducer of the scores, feature names)."""
    encoder = model.net.encoders[name]
    pre = model.preprocessors[name]
    if kind == "vector":
        cols = pre.config.columns
        return None, False, torch.zeros_like, lambda a: a.reshape(len(a), -1), (list(cols) if len(cols) > 1 else None)
    if kind == "tabular":
        names = list(pre.numeric) + list(pre.categorical)
        if hasattr(encoder, "embeds") and hasattr(encoder, "net"):
            k = encoder.n_numeric
            widths = [e.embedding_dim for e in encoder.embeds]

            def per_column(a: torch.Tensor) -> torch.Tensor:
                parts = [a[:, j] + a[:, k + j] for j in range(k)]
                start = 2 * k
                for w in widths:
                    parts.append(a[:, start: start + w].sum(dim=1))
                    start += w
                return torch.stack(parts, dim=1) if parts else a[:, :0]

            return encoder.net, True, torch.zeros_like, per_column, names

        def raw_columns(a: torch.Tensor) -> torch.Tensor:
            k = len(pre.numeric)
            return torch.cat([a[:, :k] + a[:, k: 2 * k], a[:, 2 * k:]], dim=1)

        return None, False, torch.zeros_like, raw_columns, names
    if kind == "image":
        choice = baseline or "blur"
        if choice not in ("blur", "mean"):
            raise ConfigError(f"integrated gradients: image baseline must be 'blur' or 'mean', got {choice!r}")
        base = (lambda x: _blur(x, max(1.0, x.shape[-1] / 6))) if choice == "blur" else torch.zeros_like
        return None, False, base, lambda a: a.sum(dim=1), None
    if kind == "audio":
        layer = getattr(encoder, "melspec", None)
        if layer is None:  # an encoder without a spectrogram stage: the waveform itself, from silence
            return None, False, torch.zeros_like, lambda a: a.reshape(len(a), -1), None
        return layer, False, torch.zeros_like, lambda a: a.sum(dim=1), None
    if kind in ("text", "sequence"):
        pad = model.preprocessors[name].encoder_info().get("pad_id", 0)
        return _embedding_layer(encoder), False, lambda ids: torch.full_like(ids, int(pad)), lambda a: a.sum(dim=-1), None
    raise ConfigError(f"integrated gradients: no plan for modality kind {kind!r}")


def integrated_gradients(
    model: "MultimodalModel",
    data: Any,
    modality: str,
    *,
    target: Union[str, int] = "predicted",
    n_steps: int = 64,
    batch_size: int = 16,
    internal_batch_size: int = 128,
    baseline: Optional[str] = None,
    limit: Optional[int] = None,
) -> FeatureAttribution:
    """Integrated gradients of ``modality`` for every sample of ``data`` where it is present.

    ``target``: ``"predicted"`` (the class predicted with all modalities), or a class index; ignored for
    regression. ``limit`` explains only the first that many samples.
    """
    from ..evaluate.attribution import _as_features

    net = model._require_fitted()
    spec = {m.name: m for m in model.modalities}
    if modality not in spec:
        raise ConfigError(f"integrated gradients: unknown modality {modality!r}; the model has {list(spec)}")
    kind = spec[modality].kind
    features = _as_features(model, data)
    keep = np.flatnonzero(features.masks[modality].numpy())
    if limit is not None:
        keep = keep[:limit]
    features = features.subset(keep)
    net.eval()
    head = net.head
    classification = model.task == "classification"
    if classification:
        if target == "predicted":
            targets = head.proba(model.outputs(features)["output"]).argmax(dim=1)
        else:
            targets = torch.full((len(features),), int(target), dtype=torch.long)
    else:
        targets = torch.zeros(len(features), dtype=torch.long)

    def explained(out: torch.Tensor) -> torch.Tensor:
        if classification:
            return head.proba(out / model.temperature)
        pred = head.predict(out)
        return pred.reshape(len(pred), -1)[:, :1]

    if kind == "graph":
        return _graph_ig(model, features, modality, targets, explained, n_steps, batch_size)

    layer, to_input, make_baseline, reduce, names = _plan(model, modality, kind, baseline)
    raw = _encoder_input(features, modality)

    def forward(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        batch = features[idx]
        batch = Batch({**batch.inputs, modality: x}, batch.masks, None, batch.index)
        return explained(net(batch).output)

    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    method = LayerIntegratedGradients(forward, layer) if layer is not None else IntegratedGradients(forward)
    scores, deltas = [], []
    for start in range(0, len(features), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(features)))
        x = raw[idx]
        kwargs = {"attribute_to_layer_input": to_input} if layer is not None else {}
        attr, delta = method.attribute(
            x, baselines=make_baseline(x), target=targets[idx], additional_forward_args=(idx,), n_steps=n_steps,
            internal_batch_size=internal_batch_size, return_convergence_delta=True, **kwargs,
        )
        scores.append(reduce(attr.detach()).float().numpy())
        deltas.append(delta.detach().float().numpy())
    shape = scores[0].shape[1:] if scores else (0,)
    result = np.concatenate(scores) if scores else np.zeros((0, *shape), np.float32)
    if names is None and kind == "vector":
        names = [str(j) for j in range(result.shape[1])]
    tokens = raw.numpy() if kind in ("text", "sequence") else None
    return FeatureAttribution(
        modality, kind, features.rows, result, targets.numpy(), np.concatenate(deltas) if deltas else np.zeros(0),
        names, tokens, {"n_steps": n_steps, "baseline": baseline or {"image": "blur"}.get(kind, "default")},
    )


def _graph_ig(model, features: Features, modality: str, targets: torch.Tensor, explained, n_steps: int, batch_size: int) -> FeatureAttribution:
    """Integrated gradients over node features from an all-zero baseline (midpoint Riemann sum), per atom."""
    net = model.net
    x_in = features.inputs[modality]
    if not isinstance(x_in, Indexed) or not isinstance(x_in.values, GraphSet):
        raise ConfigError(f"integrated gradients: modality {modality!r} holds no graphs")
    scores, deltas = [], []
    alphas = (torch.arange(n_steps, dtype=torch.float32) + 0.5) / n_steps
    for start in range(0, len(features), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(features)))
        batch = features[idx]
        graphs: GraphSet = x_in.values[x_in.index[idx]]
        rows = torch.arange(len(idx))
        x0 = graphs.x
        grads = torch.zeros_like(x0)

        def value(x: torch.Tensor) -> torch.Tensor:
            inputs = {**batch.inputs, modality: Indexed(GraphSet(x, graphs.edge_index, graphs.node_ptr, graphs.edge_ptr), rows)}
            return explained(net(Batch(inputs, batch.masks, None, batch.index)).output)[rows, targets[idx]]

        for a in alphas:
            x = (a * x0).requires_grad_(True)
            grads += torch.autograd.grad(value(x).sum(), x)[0]
        attr = (x0 * grads / n_steps).sum(dim=1).detach()
        with torch.no_grad():
            gap = value(x0) - value(torch.zeros_like(x0))
        node_graph = graphs.node_graph()
        per_graph = torch.zeros(len(idx)).index_add_(0, node_graph, attr)
        deltas.append((per_graph - gap).numpy())
        scores += [attr[graphs.node_ptr[i]: graphs.node_ptr[i + 1]].numpy() for i in range(len(idx))]
    return FeatureAttribution(modality, "graph", features.rows, scores, targets.numpy(), np.concatenate(deltas) if deltas else np.zeros(0),
                              None, None, {"n_steps": n_steps, "baseline": "zeros"})


def save_overlay(image: np.ndarray, scores: np.ndarray, path: Union[str, Path], title: str = "") -> Path:
    """An image ([c, h, w] or [h, w], any scale) beside it with its |IG| saliency overlaid, as a PNG."""
    from ..report.plots import pyplot

    plt = pyplot()
    img = np.asarray(image, dtype=np.float64)
    img = img.mean(axis=0) if img.ndim == 3 else img
    img = (img - img.min()) / (np.ptp(img) or 1.0)
    sal = np.abs(np.asarray(scores, dtype=np.float64))
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
    axes[0].imshow(img, cmap="gray")
    axes[0].set_title("input")
    axes[1].imshow(img, cmap="gray")
    shown = axes[1].imshow(sal, cmap="inferno", alpha=0.6)
    axes[1].set_title("|integrated gradients|")
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_attributions(model: "MultimodalModel", data: Any, modality: str, folder: Union[str, Path], overlays: int = 8, **options: Any) -> list[Path]:
    """Integrated gradients of ``modality`` written to ``folder``: ``ig_<modality>.npz`` (scores, rows, target,
    delta, and tokens / feature names where there are), a CSV ranking for vector / tabular, and for images
    saliency overlays of the first ``overlays`` samples."""
    fa = integrated_gradients(model, data, modality, **options)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"rows": np.asarray([str(r) for r in fa.rows]), "target": fa.target, "delta": fa.delta}
    if fa.kind == "graph":
        arrays["scores"] = np.concatenate(fa.scores) if fa.scores else np.zeros(0, np.float32)
        arrays["atoms_per_sample"] = np.array([len(s) for s in fa.scores])
    else:
        arrays["scores"] = fa.scores
    if fa.tokens is not None:
        arrays["tokens"] = fa.tokens
    if fa.feature_names is not None:
        arrays["feature_names"] = np.asarray(fa.feature_names)
    written = [folder / f"ig_{modality}.npz"]
    np.savez_compressed(written[0], **arrays)
    if fa.feature_names is not None:
        import pandas as pd

        written.append(folder / f"ig_{modality}_ranking.csv")
        pd.DataFrame(fa.ranking(), columns=["feature", "mean_abs_ig"]).to_csv(written[-1], index=False)
    if fa.kind == "image" and overlays:
        from .attribution import _as_features

        features = _as_features(model, data)
        position = {r: i for i, r in enumerate(features.rows)}
        images = _encoder_input(features, modality)
        for k, row in enumerate(fa.rows[:overlays]):
            written.append(save_overlay(images[position[row]].numpy(), fa.scores[k], folder / f"ig_{modality}_row{row}.png", f"row {row}"))
    return written
