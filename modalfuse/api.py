"""The user-facing estimator: build from config, fit, predict, evaluate, save and load."""
from __future__ import annotations

import gc
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
import yaml

from .core.storage import estimator_files, load_preprocessors, load_state, open_model_folder, read_json, read_tensors, save_model_folder
from .errors import ConfigError, DataError, fitted
from .config import Config, ModalityConfig, ModelConfig, ModelSpec, RecipeConfig, TrainConfig
from .options import item_key, validated
from .data import Features, SkipReport, TargetEncoder, featurize, infer_task, make_preprocessor, require_target
from .augment import augmenters
from .data.cache import FeatureCache
from .data.decode import default_workers
from .data.disk import featurize_disk
from .data.storage import choose_storage, target_values
from .data.readers import as_frame
from .encoders import ENCODERS
from .encoders.frozen_cache import frozen_caches
from .evaluate import classification_metrics, regression_metrics
from .fusion import FUSIONS
from .model import MultimodalNet
from .outputs import average_outputs
from .recipes import Plan, check_heads, member_plans, resolve_recipes
from .train import fit_net
from .train.checkpoint import latest_checkpoint
from .train.distributed import is_rank_zero
from .tracking.loggers import start_parent_run


class MultimodalModel:
    """One encoder per modality, a fusion and a task head, with a scikit-learn style API.

    ``data`` arguments accept a DataFrame, a CSV/Parquet path (file paths in it resolve
    against its folder) or a mapping of column name → array.
    """

    def __init__(
        self,
        modalities: list[ModalityConfig | dict],
        target: str,
        model: ModelConfig | dict | None = None,
        train: TrainConfig | dict | None = None,
        task: str = "auto",
        on_error: str = "raise",
        cache_dir: Optional[str] = None,
        na_values: Optional[list[str]] = None,
        storage: str = "auto",
        workers: Optional[int] = None,
        chunk_size: int = 10000,
        memory_budget_gb: Optional[float] = None,
        recipes: Optional[list[RecipeConfig | dict]] = None,
    ) -> None:
        self.modalities = [validated(ModalityConfig, m, "", at=item_key(m, i)) for i, m in enumerate(modalities)]
        if not self.modalities:
            raise ConfigError("modalities: give at least one modality")
        self.model_config = validated(ModelConfig, model or {}, "", at="model")
        self.train_config = validated(TrainConfig, train or {}, "", at="train")
        for m in self.modalities:
            ENCODERS.get(m.encoder.name)
        FUSIONS.get(self.model_config.fusion.name)
        #: a weighted ensemble of recipes (``recipes:``); empty: the one recipe of ``model`` and ``train``
        self.recipes = resolve_recipes(self.modalities, [validated(RecipeConfig, r, "", at=f"recipes[{i}]") for i, r in enumerate(recipes or [])])
        self._plans()  # the recipes' train changes are checked now, not at fit
        self.target = target
        #: the task asked for ("auto", "classification" or "regression"); ``task_`` is what fit() settled on
        self.requested_task = task
        self.task_: Optional[str] = None if task == "auto" else task
        self.on_error = on_error
        #: cell texts read as missing in tables read from files, besides the empty cell (data.na_values)
        self.na_values = list(na_values or [])
        self.cache = FeatureCache(cache_dir) if cache_dir != "none" else None
        #: data.storage as asked (auto, memory, disk) and as chosen by the last fit (``storage_``)
        self.storage, self.storage_ = storage, "memory" if storage == "auto" else storage
        self.workers = default_workers() if workers is None else workers
        self.chunk_size, self.memory_budget_gb = chunk_size, memory_budget_gb
        self.preprocessors = {m.name: make_preprocessor(m) for m in self.modalities}
        self.target_encoder: Optional[TargetEncoder] = None
        self.members: list[MultimodalNet] = []
        self.temperature = 1.0
        self.reports: dict[str, SkipReport] = {}
        self.history: dict[str, Any] = {}
        self.checked: dict[str, Features] = {}
        #: extra Lightning callbacks for every fit (e.g. a sweep's per-epoch reporter)
        self.callbacks: list[Any] = []

    @classmethod
    def from_config(cls, cfg: Config, modalities: Optional[list[ModalityConfig]] = None, target: Optional[str] = None) -> "MultimodalModel":
        mods = cfg.modalities or modalities
        tgt = cfg.data.target or target
        if not mods:
            raise ConfigError("modalities: the config names no modalities")
        if not tgt:
            raise ConfigError("data.target: the config names no target column")
        return cls(mods, tgt, cfg.model, cfg.train, cfg.data.task, cfg.data.on_error, cfg.data.cache_dir, cfg.data.na_values,
                   cfg.data.storage, cfg.data.workers, cfg.data.chunk_size, cfg.data.memory_budget_gb, cfg.recipes)

    # ----------------------------------------------------------------- data
    def _features(self, data: Any, name: str, fit: bool = False, with_target: bool = True, frame_table=None) -> Features:
        if frame_table is None and self.storage_ == "disk" and not fit and isinstance(data, (str, Path, pd.DataFrame)):
            return self._disk_features(data, name, with_target=with_target)[0]
        frame, table, base = frame_table or as_frame(data, self.na_values)
        features = featurize(
            frame, self.preprocessors, self.target_encoder, self.target if with_target else None,
            fit=fit, table=table, base_dir=base, on_error=self.on_error, cache=self.cache,
            progress=self.train_config.progress, workers=self.workers,
        )
        self.reports[name] = features.report
        return features

    def _disk_features(self, data: Any, name: str, fit: bool = False, val_fraction: float = 0.0, with_target: bool = True):
        """Stream ``data`` into on-disk shards (``data.storage: disk``); with ``fit``, also the held-out rows."""
        train, val = featurize_disk(
            data, self.preprocessors, self.target_encoder, self.target if with_target else None, fit=fit,
            val_fraction=val_fraction, seed=self.train_config.seed, on_error=self.on_error, cache=self.cache,
            workers=self.workers, chunk_size=self.chunk_size, na_values=self.na_values,
        )
        for part, key in ((train, name), (val, "val")):
            if part is not None:
                self.reports[key] = part.report
        return train, val

    def _split(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        from sklearn.model_selection import train_test_split  # imported here: slow, and only this split needs it

        frac = self.train_config.val_fraction
        if frac <= 0 or len(frame) < 2:
            return frame, frame.iloc[:0]
        n_val = math.ceil(frac * len(frame))
        labels = frame[self.target] if self.task == "classification" else None
        if labels is not None:
            counts = labels.value_counts(dropna=False)
            if labels.isna().any() or counts.min() < 2 or min(n_val, len(frame) - n_val) < len(counts):
                labels = None  # stratification is impossible; rows with an empty target are reported later
        return train_test_split(frame, test_size=n_val, random_state=self.train_config.seed, stratify=labels)

    # ----------------------------------------------------------------- fit
    def fit(self, data: Any, val: Any = None, run_dir: Optional[str | Path] = None, check: Optional[dict[str, Any]] = None,
            resume: Optional[str | Path] = None) -> "MultimodalModel":
        """Fit preprocessors on the training rows only, then train; ``val`` defaults to a split of ``data``.

        ``check`` maps names to further labelled tables (the test split): they are featurized before training,
        so that their problems stop the run at once; the results are kept in ``self.checked``.
        With a ``run_dir``, checkpoints are written to it; ``resume`` (a run folder, the default ``run_dir``)
        continues training from its newest intact checkpoint, with the same data and config, bit for bit on CPU.
        """
        if run_dir and resume and Path(run_dir).resolve() != Path(resume).resolve():
            raise ConfigError(f"fit: resume={str(resume)!r} continues that run folder; run_dir={str(run_dir)!r} names another")
        self.preprocessors = {m.name: make_preprocessor(m) for m in self.modalities}
        self.storage_ = choose_storage(self.storage, data, self.preprocessors, self.memory_budget_gb)
        if self.storage_ == "disk":  # the table is streamed: only its target column is read whole, to infer the task
            labels, table, columns = target_values(data, self.target, self.chunk_size, self.na_values)
        else:
            frame, table, base = as_frame(data, self.na_values)
            labels, columns = frame.get(self.target), list(frame.columns)
        require_target(labels, self.target, columns)
        # fitted state starts afresh: a second fit re-infers the task and refits every preprocessor
        self.task_ = infer_task(labels, table) if self.requested_task == "auto" else self.requested_task
        self.temperature, self.reports = 1.0, {}
        self.target_encoder = TargetEncoder(self.task_)
        if self.storage_ == "disk":
            train, valid = self._disk_features(data, "train", fit=True, val_fraction=self.train_config.val_fraction if val is None else 0.0)
            if val is not None:
                valid = self._disk_features(val, "val")[0]
        else:
            if val is None:
                train_frame, val_frame = self._split(frame)
                val_source = (val_frame, table, base)
            else:
                train_frame, val_source = frame, as_frame(val, self.na_values)
            train = self._features(None, "train", fit=True, frame_table=(train_frame, table, base))
            valid = self._features(None, "val", frame_table=val_source) if len(val_source[0]) else None
        if len(train) == 0:
            reasons = "; ".join(str(e) for e in train.report.skipped[:3])
            raise DataError(f"every one of the {train.report.rows_read} training rows was skipped, nothing to train on (first: {reasons})", table=table)
        if valid is not None and len(valid) == 0:
            valid = None
        train.augment = augmenters(self.modalities, self.preprocessors)  # training batches only
        self.checked = {name: self._features(source, name) for name, source in (check or {}).items()}
        run_path = Path(run_dir or resume) if (run_dir or resume) else None
        plans = self._plans()
        check_heads(plans, self.task, self.target_encoder.n_outputs)
        self.members, histories = [], []
        start_parent_run(self.train_config, run_path, len(plans))  # mlflow, several members: one record for the run
        for i, (modalities, model_config, cfg, _) in enumerate(plans):
            aux = model_config.aux_weight
            if aux is None:
                aux = FUSIONS.get(model_config.fusion.name).default_aux_weight
            torch.manual_seed(cfg.seed)
            net = self._build_net(modalities, model_config)
            if self.task == "regression" and len(train):
                net.head.start_at(float(train.target.mean()))
            member_dir = run_path / f"member{i}" if run_path is not None and len(plans) > 1 else run_path
            start_from = latest_checkpoint(member_dir) if resume and member_dir is not None else None
            histories.append(fit_net(net, train, valid, cfg, aux, member_dir, resume=start_from, callbacks=self.callbacks))
            for cache in frozen_caches(net):
                cache.flush()
            gc.collect()  # the finished trainer's loader workers exit now, not at some later collection
            self.members.append(net)
        self.history = histories[0] if len(histories) == 1 else {"members": histories}
        if run_path is not None and is_rank_zero():  # under torchrun / srun only rank zero writes
            for name, report in self.reports.items():
                report.write(run_path, name)
        return self

    @property
    def task(self) -> str:
        """The fitted task (``task_``), or the requested one before fitting."""
        return self.task_ or self.requested_task

    def _plans(self) -> list[Plan]:
        """(modalities, model, train, share) of each network to train (``recipes.member_plans``)."""
        return member_plans(self.modalities, self.model_config, self.train_config, self.recipes)

    @property
    def member_weights(self) -> Optional[list[float]]:
        """Each member's share of the averaged prediction; None: equal shares (one recipe, possibly a deep ensemble)."""
        return [share for *_, share in self._plans()] if self.recipes else None

    def _build_net(self, modalities: Optional[list[ModalityConfig]] = None, model_config: Optional[ModelConfig] = None) -> MultimodalNet:
        info = {name: pre.encoder_info() for name, pre in self.preprocessors.items()}
        modalities, model_config = modalities or self.modalities, model_config or self.model_config
        net = MultimodalNet.build(modalities, model_config, info, self.task, self.target_encoder.n_outputs)
        for m in modalities:  # frozen backbones: outputs cached per distinct input, on disk beside the feature cache
            encoder = net.encoders[m.name] if m.name in net.encoders else None
            cache = getattr(encoder, "frozen_cache", None)
            if cache is None:
                continue
            if m.augment is not None and m.augment.active():
                encoder.frozen_cache = None  # augmented inputs never repeat: caching them would only grow
            elif self.cache is not None:
                cache.use_folder(self.cache.folder.parent / "embeddings")
        return net

    # ----------------------------------------------------------------- predict
    @property
    def net(self) -> Optional[MultimodalNet]:
        """The (first) trained network; an ensemble has ``len(self.members)`` of them."""
        return self.members[0] if self.members else None

    def _require_fitted(self) -> MultimodalNet:
        return fitted(self.net)

    @torch.no_grad()
    def outputs(self, features: Features, mc_samples: int = 0) -> dict[str, Any]:
        """Network outputs for all rows, averaged over ensemble members and ``mc_samples`` dropout passes
        (``outputs.average_outputs``): ``output``, ``weights`` and ``uncertainty`` columns."""
        self._require_fitted()
        return average_outputs(self.members, features, max(self.train_config.batch_size, 256), mc_samples, self.task, self.temperature,
                               self.member_weights)

    def results(self, features: Features, mc_samples: int = 0) -> dict[str, Any]:
        """What every prediction path reports, per row: ``prediction`` (decoded labels or values), ``proba`` [n, K]
        (classification), ``uncertainty`` columns, ``weights`` [n, M] in ``weight_names`` order (where the fusion has
        them), ``present`` masks and the raw ``output``. ``predict_frame`` and the server both read this."""
        res = self.outputs(features, mc_samples)
        out, head = res["output"], self.net.head
        return {
            "output": out,
            "prediction": self.target_encoder.decode(head.predict(out).numpy()),
            "proba": head.proba(out).numpy() if self.task == "classification" else None,
            "uncertainty": {k: v.numpy() for k, v in res["uncertainty"].items()},
            "weights": res["weights"].numpy() if res["weights"] is not None else None,
            "weight_names": list(self.net.fusion.modalities),
            "present": {name: features.masks[name].numpy() for name in self.preprocessors},
        }

    def predict_frame(self, data: Any, mc_samples: int = 0) -> pd.DataFrame:
        """One row per input row kept: row id, prediction, class probabilities, uncertainty, modality presence and weights.

        ``mc_samples`` > 0 averages that many stochastic (MC dropout) passes and adds the
        epistemic variance; inverse-variance fusion then weights each modality by
        1 / (aleatoric + epistemic variance).
        """
        features = self._features(data, "predict", with_target=False)
        res = self.results(features, mc_samples)
        frame = pd.DataFrame({"row": features.rows})
        frame["prediction"] = res["prediction"]
        if res["proba"] is not None:
            for j, cls in enumerate(self.target_encoder.classes):
                frame[f"proba_{cls}"] = res["proba"][:, j]
        for kind, values in res["uncertainty"].items():
            frame[f"uncertainty_{kind}"] = values
        for name, present in res["present"].items():
            frame[f"present_{name}"] = present
        if res["weights"] is not None:
            for j, name in enumerate(res["weight_names"]):
                frame[f"weight_{name}"] = res["weights"][:, j]
        return frame

    def predict(self, data: Any) -> np.ndarray:
        return self.predict_frame(data)["prediction"].to_numpy()

    def predict_proba(self, data: Any) -> np.ndarray:
        if self.task != "classification":
            raise ValueError("predict_proba is for classification models")
        frame = self.predict_frame(data)
        return frame[[f"proba_{c}" for c in self.target_encoder.classes]].to_numpy()

    def featurize(self, data: Any) -> Features:
        """Encode labelled data once (for repeated evaluation, e.g. under corruptions)."""
        return self._features(data, "evaluate")

    def evaluate(self, data: Any, masks: Optional[dict[str, bool]] = None) -> dict[str, float]:
        """Task metrics on labelled data (or :meth:`featurize` output); ``masks`` can switch modalities off (name → False)."""
        features = data if isinstance(data, Features) else self._features(data, "evaluate")
        if masks:
            unknown = set(masks) - set(features.masks)
            if unknown:
                raise ConfigError(f"unknown modalities {sorted(unknown)}; the model has {list(features.masks)}")
            off = {name: torch.zeros_like(features.masks[name]) for name, keep in masks.items() if not keep}
            features = replace(features, masks={**features.masks, **off})
        out = self.outputs(features)["output"]
        y = features.target.numpy()
        head = self.net.head
        if self.task == "classification":
            result = classification_metrics(y, head.proba(out).numpy())
        else:
            result = regression_metrics(y, head.predict(out).numpy())
        result["n"] = len(y)
        return result

    def explain(self, data: Any, **options: Any):
        """Per-sample modality attribution (leave-one-out, Shapley, pair interactions); see :mod:`modalfuse.evaluate.attribution`."""
        from .evaluate.attribution import modality_attribution

        return modality_attribution(self, data, **options)

    def calibrate(self, data: Any) -> float:
        """Fit a softmax temperature on held-out labelled data (never the test set); returns it."""
        from .evaluate.calibration import fit_temperature
        from .heads import BinaryHead, MulticlassHead

        head = self._require_fitted().head
        if not isinstance(head, (BinaryHead, MulticlassHead)):
            raise ConfigError("calibrate: temperature scaling needs a softmax or sigmoid classification head")
        self.temperature = 1.0
        features = data if isinstance(data, Features) else self._features(data, "calibrate")
        logits = self.outputs(features)["output"]
        if isinstance(head, BinaryHead):
            logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
        self.temperature = fit_temperature(logits.numpy(), features.target.numpy())
        return self.temperature

    # ----------------------------------------------------------------- persistence
    def spec(self) -> ModelSpec:
        return ModelSpec(
            modalities=self.modalities, model=self.model_config, task=self.task, target=self.target,
            classes=self.target_encoder.classes if self.task == "classification" else None,
            temperature=self.temperature, na_values=self.na_values, recipes=self.recipes,
        )

    def save(self, folder: str | Path) -> Path:
        """safetensors weights + JSON spec, preprocessor state and metadata, with a SHA-256 manifest; no pickles.

        Under torchrun / srun only rank zero writes (the ranks hold the same weights); the others return the path."""
        self._require_fitted()
        if not is_rank_zero():
            return Path(folder)
        tensors = {
            (f"member{i}." if len(self.members) > 1 else "") + k: v
            for i, member in enumerate(self.members) for k, v in member.state_dict().items()
        }
        return save_model_folder(folder, tensors, {
            "model.json": self.spec().model_dump_json(indent=2), **estimator_files(self.train_config, self.preprocessors, self.history),
        })

    @classmethod
    def load(cls, folder: str | Path) -> "MultimodalModel":
        """A saved model folder (or bundle), its manifest checked first; any problem is one line naming the file."""
        folder = open_model_folder(folder, "model.json")
        spec = read_json(folder, "model.json", ModelSpec)
        train = read_json(folder, "train.json", TrainConfig)
        model = cls(spec.modalities, spec.target, spec.model, train, spec.task, na_values=spec.na_values, recipes=spec.recipes)
        load_preprocessors(model.preprocessors, folder)
        model.target_encoder = TargetEncoder(spec.task, spec.classes)
        model.temperature = spec.temperature
        tensors = read_tensors(folder)
        plans = model._plans()
        check_heads(plans, model.task, model.target_encoder.n_outputs)
        for i, (modalities, model_config, _, _) in enumerate(plans):
            prefix = f"member{i}." if len(plans) > 1 else ""
            net = model._build_net(modalities, model_config)
            load_state(net, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, folder)
            model.members.append(net.eval())
        return model


def write_config(cfg: Config, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False))
