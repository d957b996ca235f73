"""Benchmark harness: fusion methods × seeds on a dataset → Markdown + CSV table and a plot.

Each method runs in a fresh process (spawn) so that its peak memory is its own. Reported per
method: the task metrics (mean ± std over seeds), parameter count, training wall time, peak
resident memory, and inference latency per sample (batched, and for a single sample).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any, Literal, Optional

import pandas as pd
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import EncoderConfig, FusionConfig, ModalityConfig, ModelConfig, TrainConfig, format_validation_error
from ..errors import ConfigError
from .estimators import EstimatorConfig, run_estimator


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fusion: FusionConfig
    label: Optional[str] = None
    modalities: Optional[list[str]] = Field(None, description="Use only these modalities (default: all).")
    encoders: dict[str, EncoderConfig] = Field(default_factory=dict, description="Per-modality encoder overrides.")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-modality preprocessing option overrides (e.g. text max_tokens).")
    model: dict[str, Any] = Field(default_factory=dict, description="Model overrides for this method (e.g. head, margin_l2, head_hidden).")
    train: dict[str, Any] = Field(default_factory=dict, description="Training overrides for this method (e.g. ensemble, modality_dropout).")

    @property
    def title(self) -> str:
        return self.label or self.fusion.name


class BenchmarkConfig(BaseModel):
    """Which dataset, which methods, which seeds, and the shared model/training settings."""

    model_config = ConfigDict(extra="forbid")

    name: str
    dataset: str
    data_dir: Optional[str] = None
    split_by_seed: bool = Field(False, description="Pass the seed to the dataset loader (random splits, e.g. cub).")
    encoder: EncoderConfig = Field(default_factory=EncoderConfig, description="Encoder for every modality unless a method overrides it.")
    methods: list[MethodConfig]
    unimodal: bool = Field(True, description="Also train each modality alone (with the first method's fusion).")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(progress=False))
    output: str = "docs/results"
    threads: Optional[int] = Field(None, description="torch intra-op threads per run (default: torch's choice).")
    notes: str = Field("", description="Text for the results file: how the recipe was chosen, references.")
    on_error: Literal["raise", "skip"] = Field("raise", description="skip: rows a model cannot use (e.g. no text for a text-only model) are dropped and counted.")
    drop_at_test: list[list[str]] = Field(
        default_factory=list, description="Extra metric columns: each trained model evaluated again with these modalities removed from the test rows.",
    )
    estimators: list[EstimatorConfig] = Field(default_factory=list, description="Peers (scikit-learn-style estimators) run on the same split.")
    metrics: list[str] = Field(default_factory=list, description="Further per-seed metrics of the CSV (e.g. log_loss) shown in the table, after accuracy and F1.")
    probes: bool = Field(False, description="Extra columns 'probe <modality>': a logistic-regression probe's test accuracy on each frozen encoder's embeddings.")
    unscored: Literal["drop", "prior"] = Field(
        "drop", description="With on_error: skip, test rows a model cannot use are left out of its metrics (drop) or given the training class prior (prior).",
    )
    limit_rows: Optional[int] = Field(None, gt=0, description="Smoke runs: at most this many rows per split, every class kept (never for results).")


def load_benchmark(path: str | Path) -> BenchmarkConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
        cfg = BenchmarkConfig.model_validate(data)
    except FileNotFoundError:
        raise ConfigError(f"benchmark config not found: {path}") from None
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, BenchmarkConfig, str(path))) from None
    for i, method in enumerate(cfg.methods):  # per-method overrides must make valid configs before any run starts
        for key, schema, base in (("model", ModelConfig, cfg.model), ("train", TrainConfig, cfg.train)):
            try:
                schema.model_validate({**base.model_dump(), **getattr(method, key)})
            except ValidationError as err:
                raise ConfigError(format_validation_error(err, schema, f"{path}: methods[{i}].{key}")) from None
    return cfg


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> str:
    cpu = cpu_model()
    return f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__} ({'CUDA' if torch.cuda.is_available() else 'CPU'}), Python {platform.python_version()}"


def library_versions(extra: tuple[str, ...] = ()) -> str:
    """numpy, pandas, scikit-learn and any ``extra`` distributions (the peers' packages), as installed."""
    from importlib import metadata

    out = []
    for name in ("numpy", "pandas", "scikit-learn", *extra):
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def build_model(cfg: BenchmarkConfig, method: MethodConfig, ds: Any, seed: int) -> Any:
    """The unfitted ``MultimodalModel`` of ``method`` on dataset ``ds`` with ``seed`` (the shared settings under its overrides)."""
    from ..api import MultimodalModel

    mods = []
    for m in ds.modalities:
        if method.modalities is not None and m.name not in method.modalities:
            continue
        spec = {**m.model_dump(), "encoder": method.encoders.get(m.name, cfg.encoder).model_dump()}
        if m.name in method.options:
            spec["options"] = {**spec.get("options", {}), **method.options[m.name]}
        mods.append(ModalityConfig.model_validate(spec))
    model_cfg = ModelConfig.model_validate({**cfg.model.model_dump(), **method.model, "fusion": method.fusion.model_dump()})
    train_cfg = TrainConfig.model_validate({**cfg.train.model_dump(), **method.train, "seed": seed, "progress": False})
    return MultimodalModel(mods, ds.target, model_cfg, train_cfg, task=ds.task, on_error=cfg.on_error)


def method_by_label(cfg: BenchmarkConfig, label: str) -> MethodConfig:
    """The method titled ``label`` (unimodal rows included), for scripts that reuse a config's recipe."""
    for method in (*cfg.methods, *(expand_methods(cfg) if cfg.unimodal else ())):
        if method.title == label:
            return method
    raise KeyError(f"{cfg.name}: no method titled {label!r} (have {[m.title for m in expand_methods(cfg)]})")


def score_every_row(model: Any, test: pd.DataFrame, prior: dict[Any, float]) -> dict[str, float]:
    """Classification metrics over all of ``test``: rows the model cannot score get the class ``prior``."""
    import numpy as np

    from .metrics import classification_metrics

    frame = model.predict_frame(test)
    classes = list(model.target_encoder.classes)
    proba = np.tile(np.array([prior.get(c, 0.0) for c in classes]), (len(test), 1))
    position = {row: i for i, row in enumerate(test.index)}
    proba[[position[r] for r in frame["row"]]] = frame[[f"proba_{c}" for c in classes]].to_numpy()
    y = np.array([model.target_encoder.encode(v) for v in test[model.target]], dtype=int)
    result = classification_metrics(y, proba)
    result["unscored"] = len(test) - len(frame)
    result["n"] = len(test)
    return result


def run_method(cfg: BenchmarkConfig, method: MethodConfig, seeds: list[int]) -> list[dict[str, Any]]:
    """Train and test one method for every seed in this process; one result row per seed."""
    from ..datasets import load_dataset
    from ..train import batches

    rows = []
    for seed in seeds:
        options = {"seed": seed} if cfg.split_by_seed else {}
        ds = limited(load_dataset(cfg.dataset, data_dir=cfg.data_dir, **options), cfg.limit_rows)
        model = build_model(cfg, method, ds, seed)
        start = time.perf_counter()
        model.fit(ds.train)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        if cfg.unscored == "prior" and model.task == "classification":
            metrics = score_every_row(model, ds.test, ds.train[ds.target].value_counts(normalize=True).to_dict())
        else:
            metrics = model.evaluate(ds.test)
        batch_ms = (time.perf_counter() - start) * 1000 / max(1, metrics["n"])
        features = model.featurize(ds.test)
        dropped = {}
        for names in cfg.drop_at_test:
            off = [n for n in names if n in model.preprocessors]
            if off and len(off) < len(model.preprocessors):  # a model that never saw them, or would see nothing, gets no value
                dropped[_drop_column(names)] = model.evaluate(features, masks={n: False for n in off})[_main_metric(model.task)]
        if cfg.probes:
            from .probes import modality_probes

            dropped.update({f"probe {m}": acc for m, acc in modality_probes(model, ds.train, features).items()})
        single = []
        with torch.no_grad():
            for i, batch in enumerate(batches(features, 1, shuffle=False)):
                if i == 30:
                    break
                t0 = time.perf_counter()
                model.net(batch)
                single.append((time.perf_counter() - t0) * 1000)
        rows.append({
            "method": method.title, "seed": seed, **{k: v for k, v in metrics.items() if k != "n"}, **dropped, "test_rows": metrics["n"],
            "params": sum(p.numel() for p in model.net.parameters()),
            "train_s": round(train_s, 2), "epochs": model.history.get("epochs"),
            "latency_ms_batched": round(batch_ms, 4), "latency_ms_single": round(statistics.median(single), 3),
        })
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = round(peak_mb, 1)
    return rows


def limited(ds, rows: Optional[int]):
    """``ds`` with at most ``rows`` rows per split, spread over the classes so that each appears in both (smoke runs)."""
    if rows is None:
        return ds
    from dataclasses import replace

    def cut(frame: pd.DataFrame) -> pd.DataFrame:
        if ds.task != "classification":
            return frame.head(rows)
        per = max(1, rows // frame[ds.target].nunique())
        return frame.groupby(ds.target, group_keys=False, sort=False).head(per).reset_index(drop=True)

    return replace(ds, train=cut(ds.train), test=cut(ds.test))


def _main_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "mse"


def _drop_column(names: list[str]) -> str:
    return "without " + " + ".join(names)


def _worker(cfg_json: str, index: int, seeds: list[int], queue) -> None:
    """Method ``index`` (fusion methods first, then peers) in a fresh process."""
    cfg = BenchmarkConfig.model_validate_json(cfg_json)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    methods = expand_methods(cfg)
    try:
        if index < len(methods):
            queue.put(("ok", run_method(cfg, methods[index], seeds)))
        else:
            from ..datasets import load_dataset

            ds = limited(load_dataset(cfg.dataset, data_dir=cfg.data_dir), cfg.limit_rows)
            queue.put(("ok", run_estimator(cfg.estimators[index - len(methods)], ds, seeds)))
    except Exception as err:  # reported to the parent, which shows it with the method's name
        queue.put(("error", f"{type(err).__name__}: {err}"))


def expand_methods(cfg: BenchmarkConfig) -> list[MethodConfig]:
    """The configured methods, preceded by one unimodal run per modality when ``unimodal``."""
    methods = list(cfg.methods)
    if cfg.unimodal:
        from ..datasets import dataset_info, load_dataset

        info = dataset_info(cfg.dataset)
        options = {"seed": cfg.seeds[0]} if cfg.split_by_seed and "seed" in info.options else {}
        names = [m.name for m in load_dataset(cfg.dataset, data_dir=cfg.data_dir, **options).modalities]
        first = cfg.methods[0]
        uni = [MethodConfig(fusion=first.fusion, label=f"{n} only", modalities=[n], encoders=first.encoders, options=first.options) for n in names]
        methods = uni + methods
    return methods


def run_benchmark(
    cfg: BenchmarkConfig, command: str, out_dir: Optional[Path] = None, progress: bool = True, in_process: bool = False,
) -> pd.DataFrame:
    """Run every method in its own process (or all here, for smoke runs); write ``<name>.md``, ``.csv`` and ``.png``."""
    from tqdm.auto import tqdm

    methods = expand_methods(cfg)
    titles = [m.title for m in methods] + [e.label for e in cfg.estimators]
    ctx = mp.get_context("spawn")
    rows: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_start = os.getloadavg()
    for i in tqdm(range(len(titles)), desc=cfg.name, disable=not progress):
        queue = ctx.Queue()
        if in_process:
            _worker(cfg.model_dump_json(), i, cfg.seeds, queue)
        else:
            proc = ctx.Process(target=_worker, args=(cfg.model_dump_json(), i, cfg.seeds, queue))
            proc.start()
        status, payload = queue.get()
        if not in_process:
            proc.join()
        if status != "ok":
            raise RuntimeError(f"method {titles[i]!r} failed: {payload}")
        rows.extend(payload)
    frame = pd.DataFrame(rows)
    write_results(cfg, frame, command, started, Path(out_dir or cfg.output), (load_start, os.getloadavg()))
    return frame


def summarise(frame: pd.DataFrame, extra: list[str] = ()) -> pd.DataFrame:
    metric_cols = [c for c in ("accuracy", "f1", "mse", "mae", "r2", *extra) if c in frame.columns]
    metric_cols += [c for c in frame.columns if c.startswith(("without ", "probe ")) or c == "unscored"]
    out = []
    for method, group in frame.groupby("method", sort=False):
        row: dict[str, Any] = {"method": method}
        for c in metric_cols:
            values = group[c].dropna()
            row[c] = f"{values.mean():.4f} ± {values.std(ddof=1) if len(values) > 1 else 0:.4f}" if len(values) else "—"
        row["params"] = int(group["params"].iloc[0]) if pd.notna(group["params"].iloc[0]) else "—"
        row["train s"] = f"{group['train_s'].mean():.1f}"
        row["peak MB"] = f"{group['peak_rss_mb'].max():.0f}"
        row["ms/sample (batch)"] = f"{group['latency_ms_batched'].mean():.3f}"
        single = group["latency_ms_single"].dropna()
        row["ms (1 sample)"] = f"{single.mean():.2f}" if len(single) else "—"
        out.append(row)
    return pd.DataFrame(out)


def write_results(
    cfg: BenchmarkConfig, frame: pd.DataFrame, command: str, started: str, out_dir: Path,
    load: Optional[tuple[tuple[float, ...], tuple[float, ...]]] = None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_dir / f"{cfg.name}.csv", index=False)
    table = summarise(frame, cfg.metrics)
    md = [
        f"# Benchmark: {cfg.name}",
        "",
        f"- date: {started}",
        f"- machine: {machine_info()}",
        *([f"- load average (1/5/15 min) at start {_load(load[0])}, at end {_load(load[1])}"] if load else []),
        f"- libraries: {library_versions(tuple(sorted({e.estimator.split('.')[0] for e in cfg.estimators})))}",
        f"- command: `{command}`",
        f"- dataset: {cfg.dataset}; seeds: {cfg.seeds}",
        f"- settings: model {cfg.model.model_dump_json()}; train {cfg.train.model_dump_json()}; encoder {cfg.encoder.model_dump_json()}",
        "",
        "Metrics are on the test split, mean ± std over seeds; per-seed rows in the CSV beside this file.",
        "",
        cfg.notes.strip(),
        "",
        markdown_table(table),
        "",
    ]
    (out_dir / f"{cfg.name}.md").write_text("\n".join(md))
    plot_results(frame, out_dir / f"{cfg.name}.png", cfg.name)
    return out_dir / f"{cfg.name}.md"


def _load(values: tuple[float, ...]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def load_average() -> str:
    """The machine's load average now, as results headers state it (1 / 5 / 15 min)."""
    return _load(os.getloadavg())


def markdown_table(frame: pd.DataFrame) -> str:
    cells = [[str(c) for c in frame.columns]] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("---" for _ in frame.columns) + "|")
    return "\n".join(lines)


def plot_results(frame: pd.DataFrame, path: Path, title: str) -> None:
    os.environ.setdefault("MPLCONFIGDIR", str(path.parent / ".mplconfig"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "accuracy" if "accuracy" in frame.columns else "mse"
    stats = frame.groupby("method", sort=False).agg(mean=(metric, "mean"), std=(metric, "std"), time=("train_s", "mean"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(stats) + 1.5), sharey=True)
    axes[0].barh(stats.index, stats["mean"], xerr=stats["std"].fillna(0), color="tab:blue")
    axes[0].set_xlabel(f"test {metric} (mean ± std)")
    low = max(0.0, stats["mean"].min() - 0.05) if metric == "accuracy" else 0
    axes[0].set_xlim(low, 1.0 if metric == "accuracy" else None)
    axes[1].barh(stats.index, stats["time"], color="tab:orange")
    axes[1].set_xlabel("training wall time per seed (s)")
    axes[0].invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
