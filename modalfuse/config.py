"""Typed configuration (pydantic): modalities, model, training, data; YAML in and out.

Unknown keys are refused with a "did you mean" hint naming the full key path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .options import as_value_error as _as_value_error, format_validation_error, parse_options



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")



class EncoderConfig(_Strict):
    name: Optional[str] = Field(None, description="Registry name; the kind's default when unset.")
    dim: int = Field(64, gt=0, le=65536, description="Width of the embedding the encoder outputs.")
    options: dict[str, Any] = Field(default_factory=dict, description="The encoder's own options (`modalfuse schema` lists them).")


class ModalityConfig(_Strict):
    """One input modality: its name, kind, source column(s), preprocessing and encoder."""

    name: str
    kind: str = Field(description="A registered modality kind (`modalfuse kinds`): image, audio, text, tabular, sequence, vector, graph, ...")
    columns: list[str] = Field(default_factory=list, description="Source columns; defaults to [name].")
    options: Optional[Any] = Field(None, description="The kind's options (`modalfuse schema` lists them per kind).")
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    dedupe: Optional[bool] = Field(
        None,
        description="Store each distinct value once and encode it once per batch (for values that repeat across rows, "
        "e.g. the drugs and proteins of pair data). Unset: on when rows outnumber distinct values two to one; graphs always.",
    )
    augment: Optional[Any] = Field(
        None, description="Train-time augmentation of this modality (`modalfuse schema` lists the options per kind): "
        "image crop_scale/flip/brightness/contrast/saturation, audio shift/gain_db/noise/time_masks/freq_masks, "
        "text token_dropout, tabular/vector noise. Seeded per batch; never at validation or prediction.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("kind"), str):
            data = dict(data)
            from .kinds import KINDS

            kind = _as_value_error(KINDS.get, data["kind"], key="kind")
            opts = data.get("options")
            if opts is None:
                opts = {}
            if isinstance(opts, BaseModel):
                opts = opts.model_dump()
            if isinstance(opts, dict):
                if opts.get("kind") not in (None, data["kind"]):
                    raise ValueError(f"options: options are for kind {opts['kind']!r} but the modality is {data['kind']!r}")
                data["options"] = _as_value_error(parse_options, kind.Options, {**opts, "kind": data["kind"]}, "options", f"kind {data['kind']!r}")
            if data.get("augment") is not None:
                from .augment import parse_augment

                data["augment"] = _as_value_error(parse_augment, data["kind"], data["augment"])
        return data

    @model_validator(mode="after")
    def _defaults(self) -> "ModalityConfig":
        from .kinds import KINDS

        kind = KINDS.get(self.kind)
        if not isinstance(self.options, kind.Options):
            raise ValueError(f"options: expected the options of kind {self.kind!r}, got {type(self.options).__name__}")
        if not self.columns:
            if self.kind == "tabular":
                self.columns = [*self.options.numeric, *self.options.categorical]
            else:
                self.columns = [self.name]
        if self.kind == "tabular" and not (self.options.numeric or self.options.categorical):
            self.options.numeric = list(self.columns)
        if self.encoder.name is None:
            pretrained_text = self.kind == "text" and self.options.pretrained
            self.encoder.name = "pretrained_text" if pretrained_text else kind.default_encoder
        self._check_encoder()
        return self

    def _check_encoder(self) -> None:
        """The encoder exists, accepts this kind, and its options are valid (errors name the key)."""
        from .encoders import ENCODERS

        cls = _as_value_error(ENCODERS.get, self.encoder.name, key="encoder.name")
        if cls.kinds and self.kind not in cls.kinds:
            fits = [n for n in ENCODERS.names() if self.kind in ENCODERS.get(n).kinds]
            raise ValueError(f"encoder.name: encoder {self.encoder.name!r} takes {'/'.join(cls.kinds)} modalities, "
                             f"not {self.kind!r}; for {self.kind} use one of {fits}")
        _as_value_error(ENCODERS.validate, self.encoder.name, self.encoder.options, "encoder")


class FusionConfig(_Strict):
    name: str = "concat"
    dim: int = Field(128, gt=0, le=65536, description="Width of the fused representation.")
    options: dict[str, Any] = Field(default_factory=dict, description="The fusion's own options (`modalfuse schema` lists them).")

    @model_validator(mode="after")
    def _options(self) -> "FusionConfig":
        from .fusion import FUSIONS

        _as_value_error(FUSIONS.validate, self.name, self.options, None)
        return self


class ModelConfig(_Strict):
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    head: str = Field(
        "default", description="A registered head (`modalfuse schema`): default (the task's plain head), gaussian "
        "(regression with a predicted variance), evidential (Dirichlet classification), margin (multiclass hinge, an SVM), ...",
    )
    head_hidden: int = Field(128, ge=0, le=65536, description="Hidden width of the task head; 0 for a linear head.")
    head_options: dict[str, Any] = Field(default_factory=dict, description="The head's own options (e.g. margin: {l2: 0.06}).")
    gaussian_beta: float = Field(
        0.0, ge=0, le=1,
        description="Shorthand for head_options.beta of the gaussian head: weight each sample's NLL by its detached "
        "variance^beta (β-NLL); 0.5 keeps the mean as accurate as plain regression, 0 is the plain NLL.",
    )
    margin_l2: float = Field(
        0.0, ge=0, description="Shorthand for head_options.l2 of the margin head: L2 penalty on its weights (a linear head "
        "on fixed features is an SVM with C = 1 / (margin_l2 · n)).",
    )
    dropout: float = Field(0.1, ge=0, lt=1)
    aux_weight: Optional[float] = Field(
        None, ge=0, description="Weight of per-modality auxiliary losses, where a fusion has them; unset: the fusion's default; 0: off.",
    )

    @model_validator(mode="after")
    def _head(self) -> "ModelConfig":
        from .heads import HEADS

        if self.head == "default":
            if self.head_options:
                raise ValueError("head_options: the default head has no options; name a head in model.head")
        else:
            _as_value_error(HEADS.validate, self.head, self.head_settings()[1], None, key="head", rename=("options", "head_options"))
        return self

    def head_settings(self, forced: Optional[str] = None) -> tuple[str, dict[str, Any]]:
        """The head's name and options, with the shorthand fields folded in (explicit head_options win).

        ``forced`` is a head a fusion requires (evidential fusion's Dirichlet head): it keeps only its shorthand.
        """
        name = forced or self.head
        shorthand = {"gaussian": {"beta": self.gaussian_beta}, "margin": {"l2": self.margin_l2}}.get(name, {})
        explicit = self.head_options if name == self.head else {}
        return name, {**{k: v for k, v in shorthand.items() if v}, **explicit}


class MixupConfig(_Strict):
    """Multimodal mixup: each training batch is mixed with a shuffled copy of itself, one λ ~ Beta(alpha, alpha)."""

    alpha: float = Field(0.2, gt=0, description="Beta(alpha, alpha) concentration of the mixing weight λ.")
    until_epoch: Optional[int] = Field(
        None, gt=0, description="Mix during epochs 0 .. until_epoch - 1, then train on clean samples; unset: every epoch."
    )


class TranslationConfig(_Strict):
    """Translation as an auxiliary loss: predict modality ``target``'s encoded values from each ``sources`` embedding."""

    target: str = Field(description="The modality whose encoded values are predicted (e.g. adt).")
    sources: list[str] = Field(default_factory=list, description="Modalities predicting it; empty: every other modality.")
    weight: float = Field(1.0, gt=0, description="Weight of the translation loss beside the task loss.")
    loss: Literal["mse", "poisson", "bernoulli"] = "mse"


class GradientModulationConfig(_Strict):
    """OGM-GE (Peng et al., CVPR 2022): slow down the dominant modality's encoder, plus Gaussian gradient noise."""

    alpha: float = Field(0.5, gt=0, description="Strength: coefficient 1 - tanh(alpha * (rho - 1)) for a modality with rho > 1.")
    start_epoch: int = Field(0, ge=0, description="First epoch with modulation.")
    until_epoch: Optional[int] = Field(None, gt=0, description="Modulate during epochs start_epoch .. until_epoch - 1; unset: to the end.")
    noise: bool = Field(True, description="Add N(0, std of the gradient) to each modulated gradient (the 'GE' part).")

    @model_validator(mode="after")
    def _window(self) -> "GradientModulationConfig":
        if self.until_epoch is not None and self.until_epoch <= self.start_epoch:
            raise ValueError(f"until_epoch ({self.until_epoch}) must be greater than start_epoch ({self.start_epoch})")
        return self


class TrainConfig(_Strict):
    max_epochs: int = Field(50, gt=0)
    batch_size: int = Field(64, gt=0)
    lr: float = Field(1e-3, gt=0)
    warmup_epochs: int = Field(0, ge=0, description="Linear learning-rate warm-up before the cosine decay (helps large batches).")
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(10, ge=0, description="Early-stopping patience in epochs; 0 disables early stopping.")
    seed: int = 0
    val_fraction: float = Field(0.1, ge=0, lt=1, description="Share of train carved out for validation when no val set is given.")
    ensemble: int = Field(1, ge=1, description="Deep ensemble: train this many members (seeds seed, seed+1, ...) and average them.")
    modality_dropout: float = Field(0.0, ge=0, lt=1, description="Per-sample probability of hiding each modality while training.")
    mixup: Optional[MixupConfig] = Field(None, description="Multimodal mixup of the modality embeddings and labels; unset: off.")
    gradient_modulation: Optional[GradientModulationConfig] = Field(
        None, description="OGM-GE gradient modulation of the dominant modality's encoder (classification); unset: off."
    )
    modality_aux_weight: float = Field(
        0.0, ge=0, description="Weight of per-modality auxiliary losses: a linear classifier on each encoder's embedding (training only)."
    )
    translation: Optional[TranslationConfig] = Field(
        None, description="Co-learning: predict one modality's encoded values from the others' embeddings (training only); unset: off."
    )
    progress: bool = True
    threads: Optional[int] = Field(None, gt=0, description="torch CPU threads (default: torch's choice); 1 suits small models on busy machines.")
    accelerator: str = "cpu"
    devices: Union[int, str] = Field(1, description="Processes (CPU) or accelerators per node; under torchrun, 1 takes the launcher's count.")
    precision: Literal["32", "bf16-mixed", "16-mixed"] = Field(
        "32", description="Floating-point precision: 32, bf16-mixed (CPU or GPU), 16-mixed (CUDA GPUs only).")
    compile: Union[bool, Literal["inductor", "aot_eager", "eager"]] = Field(
        False, description="Compile the network's forward pass with torch.compile (true: inductor; or a backend name).")
    workers: int = Field(0, ge=0, description="DataLoader processes gathering training batches, either storage (0: in the training process).")
    checkpoint: bool = Field(True, description="Write a resumable checkpoint to RUN/checkpoints at each epoch end (with a run folder).")
    checkpoint_every_steps: Optional[int] = Field(None, gt=0, description="Also write a checkpoint every N optimizer steps.")
    strategy: Literal["auto", "ddp", "ddp_spawn", "fsdp"] = Field(
        "auto", description="Lightning strategy for several devices or nodes (docs/distributed.md); auto: ddp_spawn without a launcher, ddp under torchrun/srun.",
    )
    num_nodes: int = Field(1, gt=0, description="Machines taking part (each starts train.devices processes; torchrun/srun launch them).")
    logger: Literal["csv", "tensorboard", "mlflow"] = Field(
        "csv", description="Per-epoch tracking besides metrics.csv: csv (only that), tensorboard (RUN/tensorboard), mlflow (tracking_uri).",
    )
    tracking_uri: Optional[str] = Field(None, description="MLflow tracking URI; unset: $MLFLOW_TRACKING_URI, else a local SQLite store in ./mlruns.")

    @model_validator(mode="before")
    @classmethod
    def _precision_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("precision"), int) and not isinstance(data.get("precision"), bool):
            data = {**data, "precision": str(data["precision"])}
        return data

    @model_validator(mode="after")
    def _epochs(self) -> "TrainConfig":
        for key, cfg in (("mixup", self.mixup), ("gradient_modulation", self.gradient_modulation)):
            if cfg is not None and cfg.until_epoch is not None and cfg.until_epoch > self.max_epochs:
                raise ValueError(
                    f"{key}.until_epoch ({cfg.until_epoch}) is past max_epochs ({self.max_epochs}); leave it unset to keep it on throughout"
                )
        if self.precision == "16-mixed" and self.accelerator == "cpu":
            raise ValueError("precision: 16-mixed needs a CUDA GPU (accelerator: gpu); on CPU use 32 or bf16-mixed")
        if self.gradient_modulation is not None and self.gradient_modulation.start_epoch >= self.max_epochs:
            raise ValueError(f"gradient_modulation.start_epoch ({self.gradient_modulation.start_epoch}) must be below max_epochs ({self.max_epochs})")
        return self


class AlignConfig(_Strict):
    """Contrastive alignment: a projection head per modality into a shared, L2-normalised space."""

    dim: int = Field(64, gt=0, description="Width of the shared embedding space.")
    projection_hidden: int = Field(0, ge=0, description="Hidden width of each projection head; 0 for a linear head.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout inside the projection heads.")
    temperature: float = Field(0.07, gt=0, description="Initial softmax temperature of the InfoNCE logits.")
    min_temperature: float = Field(0.01, gt=0, description="Lower clamp of the temperature.")
    max_temperature: float = Field(1.0, gt=0, description="Upper clamp of the temperature.")
    learn_temperature: bool = True
    label_weight: float = Field(
        0.0, ge=0, le=1,
        description="Share of each row's contrastive target spread over same-class items (needs a label column); 0 is plain CLIP.",
    )
    class_weight: float = Field(
        0.0, ge=0,
        description="Weight of an auxiliary loss classifying every modality's shared embedding against learned class "
        "directions common to all modalities (needs a label column; training only); 0 is off.",
    )
    pairs: Optional[list[tuple[str, str]]] = Field(None, description="Modality pairs to align; default every pair.")

    @model_validator(mode="after")
    def _temperatures(self) -> "AlignConfig":
        if not self.min_temperature <= self.temperature <= self.max_temperature:
            raise ValueError(
                f"temperature ({self.temperature}) must lie in [min_temperature, max_temperature] = [{self.min_temperature}, {self.max_temperature}]"
            )
        return self


class DataConfig(_Strict):
    dataset: Optional[str] = Field(None, description="A built-in dataset name (see `modalfuse datasets list`).")
    data_dir: Optional[str] = None
    train: Optional[str] = Field(None, description="CSV or Parquet table; image/audio paths are relative to it.")
    val: Optional[str] = None
    test: Optional[str] = None
    target: Optional[str] = None
    task: Literal["auto", "classification", "regression"] = "auto"
    on_error: Literal["raise", "skip"] = "raise"
    na_values: list[str] = Field(
        default_factory=list, description='Cell texts read as missing besides the empty cell (e.g. ["NA", "n/a"]); '
        'by default "NA", "None" or "null" are values like any other.',
    )
    cache_dir: Optional[str] = Field(None, description="Feature cache folder; default ~/.cache/modalfuse/features; 'none' turns caching off.")
    storage: Literal["auto", "memory", "disk"] = Field(
        "auto", description="memory: one tensor per modality in RAM; disk: tables streamed in chunks into on-disk shards "
        "read batch by batch (bounded memory); auto: disk when the decoded float32 data would exceed memory_budget_gb.",
    )
    memory_budget_gb: Optional[float] = Field(None, gt=0, description="For storage: auto; default a quarter of the available RAM.")
    workers: Optional[int] = Field(None, ge=0, description="Processes decoding image and audio files (train.workers gathers "
                                   "the batches); default one per core up to 4; 0: in the main process.")
    chunk_size: int = Field(10000, gt=0, description="Rows read at a time with disk storage (CSV chunks, Parquet row-group slices).")

    @model_validator(mode="after")
    def _source(self) -> "DataConfig":
        if self.dataset is None and self.train is None:
            raise ValueError("give either data.dataset (a built-in dataset) or data.train (a table)")
        return self


class AutoConfig(_Strict):
    """``preset: auto`` (modalfuse/auto.py): cross-validated choice over a small portfolio, linear baselines included."""

    folds: int = Field(3, ge=2, le=20, description="Cross-validation folds on the training rows.")
    budget_s: Optional[float] = Field(None, gt=0, description="Stop trying candidates after this many seconds (baselines always run).")
    max_trials: Optional[int] = Field(None, gt=0, description="Try at most this many candidates (baselines first).")
    seed: int = Field(0, description="Fold assignment seed.")
    small_rows: int = Field(2000, gt=0, description="Below this many training rows the portfolio adds a smaller MLP.")
    min_rows: int = Field(100, ge=2, description="With preset unset: fewer training rows train the default recipe without a search.")
    engine: Literal["local", "ray"] = Field("local", description="local: candidates one after another in this process; "
                                            "ray: one Ray Tune trial per candidate, in parallel (extra tune).")
    address: Optional[str] = Field(None, description="With engine: ray, the Ray cluster to run on (default: a local Ray).")
    ensemble_rounds: int = Field(25, ge=0, description="Ensemble selection (Caruana et al. 2004): this many greedy rounds, "
                                 "with replacement, over the candidates' out-of-fold predictions give a weighted ensemble "
                                 "(recipes:), chosen only where it beats the best single candidate; 0: the best single one.")


class RecipeConfig(_Strict):
    """One recipe of a weighted ensemble (``recipes:``), e.g. written by preset: auto's ensemble selection. Recipes
    share the modalities' data settings (columns, options), so one preprocessing; each trains its own network(s)."""

    label: str = Field("", description="A name for the recipe (reports and model cards).")
    weight: float = Field(gt=0, description="Its share of the mixture of predicted probabilities (weights are normalised).")
    encoders: dict[str, EncoderConfig] = Field(default_factory=dict, description="Modality name → its encoder in this recipe; "
                                               "modalities not named keep modalities[].encoder.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: dict[str, Any] = Field(default_factory=dict, description="Changes to the train section for this recipe (e.g. lr).")


class Config(_Strict):
    """A whole experiment: data, modalities, model and training."""

    data: DataConfig
    modalities: list[ModalityConfig] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run_dir: str = "runs"
    preset: Optional[Literal["none", "auto"]] = Field(None, description="auto: choose the recipe by cross-validation over a "
        "portfolio (modalfuse/auto.py); none: train the configured one; unset: auto where the config has no model section "
        "and the training table at least auto.min_rows rows, else none.")
    auto: AutoConfig = Field(default_factory=AutoConfig)
    recipes: list[RecipeConfig] = Field(default_factory=list, description="A weighted ensemble of recipes: given, they "
        "replace the model section; each recipe's network averages into the prediction by its weight.")
    search: Optional[dict[str, Any]] = Field(None, description="Parameter spaces for `modalfuse tune` (modalfuse.tune.space); train ignores it.")

    @model_validator(mode="after")
    def _unique(self) -> "Config":
        names = [m.name for m in self.modalities]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"modality names must be unique; repeated: {sorted(dup)}")
        if self.recipes and self.preset == "auto":
            raise ValueError("recipes: a weighted ensemble is a chosen recipe; preset: auto would choose another (drop one of them)")
        return self


class ModelSpec(_Strict):
    """What a saved model needs to rebuild itself: modalities, model, task and classes."""

    modalities: list[ModalityConfig]
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: Literal["classification", "regression"]
    target: str
    classes: Optional[list[Any]] = None
    temperature: float = Field(1.0, gt=0, description="Softmax temperature fitted by calibrate() (1 = none).")
    na_values: list[str] = Field(default_factory=list, description="Cell texts read as missing besides the empty cell (data.na_values at training).")
    recipes: list[RecipeConfig] = Field(default_factory=list, description="The weighted ensemble's recipes (empty: one recipe, model).")


def parse_config(data: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, Config, source)) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; expected a YAML config file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); expected a YAML config file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    cfg = parse_config(data, source=str(path))
    base = path.parent
    for attr in ("train", "val", "test"):
        value = getattr(cfg.data, attr)
        if value and not Path(value).is_absolute():
            setattr(cfg.data, attr, str(base / value))
    return cfg


_KIND_OPTIONS = {"ImageOptions": "image", "AudioOptions": "audio", "TextOptions": "text", "TabularOptions": "tabular",
                 "SequenceOptions": "sequence", "VectorOptions": "vector", "GraphOptions": "graph"}


def __getattr__(name: str) -> Any:
    """The kinds' options models, importable from here as before (each now lives in its kind's module)."""
    if name in _KIND_OPTIONS:
        from .kinds import KINDS

        return KINDS.get(_KIND_OPTIONS[name]).Options
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
