"""AlignedModel: encoders from the registry plus projection heads into one shared space, trained with InfoNCE.

Fit on a table whose rows pair two or more modalities (missing cells are allowed: a pair's loss uses the
rows where both are present); then embed any one modality, retrieve across modalities, and classify by
similarity to class prototypes (embedded class descriptions, optionally updated with a few examples).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..options import item_key, validated
from ..core.storage import estimator_files, load_preprocessors, load_state, open_model_folder, read_json, read_tensors, save_model_folder
from ..config import AlignConfig, ModalityConfig, TrainConfig
from ..data import Batch, Features, SkipReport, featurize, make_preprocessor
from ..kinds import is_missing
from ..data.cache import FeatureCache
from ..data.readers import as_frame
from ..encoders import ENCODERS, build_encoder
from ..encoders.base import mlp
from ..errors import ConfigError, fitted
from ..evaluate.retrieval import cross_modal_metrics, similarity, top_k
from ..objectives.contrastive import Temperature, normalise
from ..train import batches, fit_net
from ..train.checkpoint import latest_checkpoint
from ..train.distributed import is_rank_zero
from .module import AlignModule
from .prototypes import nearest_prototype


class AlignNet(nn.Module):
    """One encoder and one projection head per modality, and the shared InfoNCE temperature."""

    def __init__(self, modalities: list[ModalityConfig], align: AlignConfig, encoder_info: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({
            m.name: build_encoder(m.encoder.name, m.encoder.dim, encoder_info[m.name], m.encoder.options, where=f"modalities.{m.name}.encoder",
                             kind=m.kind)
            for m in modalities
        })
        hidden = [align.projection_hidden] if align.projection_hidden else []
        self.projections = nn.ModuleDict({name: mlp([enc.dim, *hidden, align.dim], align.dropout) for name, enc in self.encoders.items()})
        self.temperature = Temperature(align.temperature, align.min_temperature, align.max_temperature, align.learn_temperature)
        self.dim = align.dim

    def embed(self, batch: Batch, names: Optional[list[str]] = None) -> dict[str, torch.Tensor]:
        """Unit-norm shared-space embeddings [B, dim] per modality; rows where it is missing are zeros."""
        out = {}
        for name in names or list(batch.inputs):
            x, mask = batch.inputs[name], batch.masks[name]
            idx = mask.nonzero(as_tuple=True)[0]
            emb = torch.zeros(mask.shape[0], self.dim, device=mask.device)
            if idx.numel():
                if isinstance(x, torch.Tensor):
                    z = self._project(name, x[idx])
                else:  # de-duplicated values: encode each distinct value once, then gather per row
                    z = self._project(name, x.values)[x.index[idx]]
                emb = emb.index_copy(0, idx, z.to(emb.dtype))
            out[name] = emb
        return out

    def _project(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return normalise(self.projections[name](self.encoders[name](x)))


#: training options that cannot apply to alignment, refused when set: those of a supervised head (mixup, gradient
#: modulation, per-modality classifiers, translation), ensembles (independently trained spaces do not average),
#: compile (an AlignNet has no forward pass), several processes (InfoNCE's negatives are the whole batch), and
#: accelerators (not yet tried with alignment)
UNHONOURED = ("ensemble", "mixup", "gradient_modulation", "modality_aux_weight", "translation", "compile",
              "accelerator", "devices", "num_nodes", "strategy")


class AlignedModel:
    """Contrastive alignment of two or more modalities, with retrieval and zero-/few-shot classification.

    ``label`` names an optional class column: it is used by ``align.label_weight`` (same-class items as
    extra positives) and reported as class-level retrieval metrics.
    """

    def __init__(
        self,
        modalities: list[ModalityConfig | dict],
        label: Optional[str] = None,
        align: AlignConfig | dict | None = None,
        train: TrainConfig | dict | None = None,
        on_error: str = "raise",
        cache_dir: Optional[str] = None,
    ) -> None:
        self.modalities = [validated(ModalityConfig, m, "", at=item_key(m, i)) for i, m in enumerate(modalities)]
        if len(self.modalities) < 2:
            raise ConfigError("modalities: alignment needs at least two modalities")
        self.align_config = validated(AlignConfig, align or {}, "", at="align")
        self.train_config = validated(TrainConfig, train or {}, "", at="train")
        names = [m.name for m in self.modalities]
        for a, b in self.align_config.pairs or []:
            for n in (a, b):
                if n not in names:
                    raise ConfigError(f"align.pairs: unknown modality {n!r} (modalities: {names})")
        if (self.align_config.label_weight > 0 or self.align_config.class_weight > 0) and label is None:
            raise ConfigError("align.label_weight and align.class_weight need a label column (label=...)")
        unsupported = [key for key, value in self.train_config.model_dump().items()
                       if key in UNHONOURED and value != TrainConfig.model_fields[key].get_default(call_default_factory=True)]
        if unsupported:  # refused, never silently ignored
            raise ConfigError(f"train.{unsupported[0]}: alignment training does not support {', '.join(unsupported)}; "
                              "leave them at their defaults (it trains with the other train options)")
        for m in self.modalities:
            ENCODERS.get(m.encoder.name)
        self.label = label
        self.on_error = on_error
        self.cache = FeatureCache(cache_dir) if cache_dir != "none" else None
        self.preprocessors = {m.name: make_preprocessor(m) for m in self.modalities}
        self.net: Optional[AlignNet] = None
        self.history: dict[str, Any] = {}
        self.reports: dict[str, SkipReport] = {}
        #: extra Lightning callbacks for every fit, as MultimodalModel.callbacks
        self.callbacks: list[Any] = []

    # ----------------------------------------------------------------- data
    def featurize(self, data: Any, names: Optional[list[str]] = None, fit: bool = False, report: str = "embed") -> tuple[Features, Optional[np.ndarray]]:
        """Encoded modalities ``names`` (default all) of ``data`` and, where the table has it, the label column."""
        frame, table, base = data if isinstance(data, tuple) else as_frame(data)
        pres = {n: self.preprocessors[n] for n in (names or self.preprocessors)}
        if len(pres) < len(self.preprocessors):  # rows lacking every requested modality are simply not embedded
            cells = frame[[c for p in pres.values() for c in p.config.columns if c in frame.columns]]
            frame = frame[~cells.map(is_missing).all(axis=1)] if cells.shape[1] else frame
        features = featurize(frame, pres, None, None, fit=fit, table=table, base_dir=base, on_error=self.on_error,
                             cache=self.cache, progress=self.train_config.progress)
        self.reports[report] = features.report
        labels = frame.loc[features.rows, self.label].to_numpy() if self.label and self.label in frame.columns else None
        return features, labels

    # ----------------------------------------------------------------- fit
    def fit(self, data: Any, val: Any = None, run_dir: Optional[str | Path] = None,
            resume: Optional[str | Path] = None) -> "AlignedModel":
        """Fit preprocessors on the training rows, then train encoders and heads with InfoNCE (``fit_net``); early
        stopping on ``val`` (default: ``train.val_fraction`` of ``data``).

        With a ``run_dir``, metrics.csv and checkpoints are written to it; ``resume`` (a run folder, the default
        ``run_dir``) continues training from its newest intact checkpoint, with the same data and config."""
        if run_dir and resume and Path(run_dir).resolve() != Path(resume).resolve():
            raise ConfigError(f"fit: resume={str(resume)!r} continues that run folder; run_dir={str(run_dir)!r} names another")
        cfg = self.train_config
        frame, table, base = as_frame(data)
        if self.label is not None and self.label not in frame.columns:
            raise ConfigError(f"label column {self.label!r} is not in the training table")
        if val is None and cfg.val_fraction > 0:
            rng = np.random.default_rng(cfg.seed)
            order = rng.permutation(len(frame))
            n_val = max(1, int(round(cfg.val_fraction * len(frame))))
            frame, val_frame = frame.iloc[order[n_val:]], frame.iloc[order[:n_val]]
            val = (val_frame, table, base)
        train, train_labels = self.featurize((frame, table, base), fit=True, report="train")
        valid, val_labels = self.featurize(val if isinstance(val, tuple) else as_frame(val), report="val") if val is not None else (None, None)
        torch.manual_seed(cfg.seed)  # initial weights of the net, then the classifier; training draws continue the stream
        self.net = AlignNet(self.modalities, self.align_config, {n: p.encoder_info() for n, p in self.preprocessors.items()})
        classes = None if train_labels is None else pd.Index(pd.unique(pd.Series(train_labels)))
        module = AlignModule(self.net, self.align_config, cfg, _codes(train_labels, classes), _codes(val_labels, classes))
        run_path = Path(run_dir or resume) if (run_dir or resume) else None
        start_from = latest_checkpoint(run_path) if resume else None
        self.history = fit_net(module, train, valid, cfg, run_dir=run_path, resume=start_from, callbacks=self.callbacks)
        self.net.eval()
        if run_path is not None and is_rank_zero():
            for name, report in self.reports.items():
                report.write(run_path, name)
        return self

    # ----------------------------------------------------------------- embed and retrieve
    def _require_fitted(self) -> AlignNet:
        return fitted(self.net)

    @torch.no_grad()
    def embed_features(self, features: Features, names: Optional[list[str]] = None) -> dict[str, np.ndarray]:
        """Shared-space embeddings per modality [n, dim]; rows where the modality is missing are NaN."""
        net = self._require_fitted().eval()
        names = names or list(features.inputs)
        parts: dict[str, list] = {n: [] for n in names}
        for batch in batches(features, max(self.train_config.batch_size, 256), shuffle=False):
            for name, emb in net.embed(batch, names).items():
                emb[~batch.masks[name]] = float("nan")
                parts[name].append(emb)
        return {n: (torch.cat(p) if p else torch.zeros(0, net.dim)).numpy() for n, p in parts.items()}

    def embed(self, data: Any, modality: str) -> np.ndarray:
        """Embeddings [n_rows, dim] of one modality of ``data``, in row order (unit norm; NaN rows where it is missing or skipped)."""
        self._check_modality(modality)
        frame, table, base = as_frame(data)
        frame = frame.reset_index(drop=True)
        features, _ = self.featurize((frame, table, base), [modality])
        out = np.full((len(frame), self._require_fitted().dim), np.nan, dtype=np.float32)
        out[np.asarray(features.rows, dtype=np.int64)] = self.embed_features(features, [modality])[modality]
        return out

    def retrieve(self, queries: Any, gallery: Any, query_modality: str, gallery_modality: str, k: int = 5) -> pd.DataFrame:
        """Top-``k`` gallery rows for each query row by cosine similarity in the shared space.

        Returns one row per (query, rank): ``query_row``, ``rank`` (1 = best), ``gallery_row``, ``score``.
        Rows where the modality is missing are left out on either side.
        """
        self._check_modality(query_modality)
        self._check_modality(gallery_modality)
        q_feat, _ = self.featurize(queries, [query_modality], report="queries")
        g_feat, _ = self.featurize(gallery, [gallery_modality], report="gallery")
        q = self.embed_features(q_feat, [query_modality])[query_modality]
        g = self.embed_features(g_feat, [gallery_modality])[gallery_modality]
        q_keep, g_keep = ~np.isnan(q).any(axis=1), ~np.isnan(g).any(axis=1)
        if not g_keep.any():
            raise ConfigError(f"the gallery has no row with modality {gallery_modality!r}")
        scores = similarity(q[q_keep], g[g_keep])
        best = top_k(scores, k)
        q_rows = np.asarray(q_feat.rows, dtype=object)[q_keep]
        g_rows = np.asarray(g_feat.rows, dtype=object)[g_keep]
        records = [
            {"query_row": q_rows[i], "rank": r + 1, "gallery_row": g_rows[j], "score": float(scores[i, j])}
            for i in range(len(best)) for r, j in enumerate(best[i])
        ]
        return pd.DataFrame(records, columns=["query_row", "rank", "gallery_row", "score"])

    def evaluate(self, data: Any, pairs: Optional[list[tuple[str, str]]] = None) -> dict[str, float]:
        """Recall@1/5/10 and median rank in both directions for each modality pair, on the rows that have both.

        With the label column in ``data`` the class-level metrics (any same-class item is a hit) are added.
        """
        features, labels = self.featurize(data, report="evaluate")
        emb = self.embed_features(features)
        out: dict[str, float] = {}
        for a, b in pairs or self.align_config.pairs or _all_pairs(list(emb)):
            keep = ~(np.isnan(emb[a]).any(axis=1) | np.isnan(emb[b]).any(axis=1))
            out.update(cross_modal_metrics(emb[a][keep], emb[b][keep], None if labels is None else labels[keep], (a, b)))
        return out

    # ----------------------------------------------------------------- zero-shot
    def prototypes(self, descriptions: dict[Any, str], modality: str) -> tuple[list[Any], np.ndarray]:
        """Classes and their zero-shot prototypes [n_classes, dim]: each class's description embedded by ``modality``."""
        self._check_modality(modality)
        columns = self.preprocessors[modality].config.columns
        frame = pd.DataFrame({c: list(descriptions.values()) if i == 0 else "" for i, c in enumerate(columns)})
        return list(descriptions), self.embed(frame, modality)

    @torch.no_grad()
    def frozen_features(self, descriptions: dict[Any, str], modality: str) -> np.ndarray:
        """The frozen backbone's pooled features [n_classes, hidden] of each description (before any trained layer):
        features the alignment training cannot have fitted to the seen classes (see ``leave_one_out_priors``)."""
        self._check_modality(modality)
        encoder = self._require_fitted().encoders[modality]
        if not (hasattr(encoder, "pooled") and getattr(encoder, "freeze", False)):
            raise ConfigError(f"frozen_features: modality {modality!r} needs a frozen pretrained encoder")
        columns = self.preprocessors[modality].config.columns
        frame = pd.DataFrame({c: list(descriptions.values()) if i == 0 else "" for i, c in enumerate(columns)})
        features, _ = self.featurize(frame, [modality])
        x = features.expanded().inputs[modality]
        return encoder.eval().pooled(x).numpy()

    def zero_shot(self, data: Any, modality: str, descriptions: dict[Any, str], description_modality: str) -> np.ndarray:
        """Predicted class per row of ``data``: the class whose description is nearest to the row's ``modality`` embedding."""
        classes, protos = self.prototypes(descriptions, description_modality)
        emb = self.embed(data, modality)
        if np.isnan(emb).any():
            raise ConfigError(f"zero_shot: some rows lack modality {modality!r}")
        return np.asarray(classes, dtype=object)[nearest_prototype(emb, protos)]

    def _check_modality(self, name: str) -> None:
        if name not in self.preprocessors:
            raise ConfigError(f"unknown modality {name!r}; the model has {list(self.preprocessors)}")

    # ----------------------------------------------------------------- persistence
    def save(self, folder: str | Path) -> Path:
        """``weights.safetensors`` plus JSON (``align.json``, ``train.json``, ``preprocessors.json``, ``meta.json``) and a manifest."""
        net = self._require_fitted()
        spec = {"modalities": [json.loads(m.model_dump_json()) for m in self.modalities], "label": self.label,
                "align": json.loads(self.align_config.model_dump_json())}
        return save_model_folder(folder, net.state_dict(), {
            "align.json": json.dumps(spec, indent=2), **estimator_files(self.train_config, self.preprocessors, self.history),
        })

    @classmethod
    def load(cls, folder: str | Path) -> "AlignedModel":
        folder = open_model_folder(folder, "align.json", "aligned model")
        spec = read_json(folder, "align.json")
        model = cls(spec["modalities"], spec["label"], spec["align"], read_json(folder, "train.json", TrainConfig))
        load_preprocessors(model.preprocessors, folder)
        model.net = AlignNet(model.modalities, model.align_config, {n: p.encoder_info() for n, p in model.preprocessors.items()})
        load_state(model.net, read_tensors(folder), folder)
        model.net.eval()
        return model


def _all_pairs(names: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]


def _codes(labels: Optional[np.ndarray], classes: Optional[pd.Index] = None) -> Optional[torch.Tensor]:
    """Integer codes of a label array in the order of ``classes`` (default: order of appearance), or None.

    Labels outside ``classes`` get distinct negative codes: each is its own class and no classifier target.
    """
    if labels is None:
        return None
    index = classes if classes is not None else pd.Index(pd.unique(pd.Series(labels)))
    codes = index.get_indexer(pd.Series(labels))
    unknown = codes < 0
    codes[unknown] = -1 - pd.factorize(pd.Series(labels[unknown]))[0]
    return torch.as_tensor(codes, dtype=torch.long)
