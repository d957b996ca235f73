"""Commands on models: train, evaluate, predict (streamed too), export, serve, demo."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError, ModalfuseError


def _run_dir(base: str, name: str) -> Path:
    """A fresh run folder under ``base``: mkdir itself decides who gets a name, so racing trainings never share one."""
    stem = Path(base) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        for suffix in range(10000):
            path = stem if suffix == 0 else Path(f"{stem}-{suffix}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as err:
        raise ConfigError(f"run_dir: cannot create a run folder in {base} ({err.strerror or err}); give a writable --run-dir") from None
    raise ConfigError(f"run_dir: no free run folder name under {stem}")


def _table(data: Any, data_dir: Optional[str], split: str):
    """A table path, or ``dataset:NAME`` for a built-in dataset's split."""
    if isinstance(data, str) and data.startswith("dataset:"):
        from ..datasets import load_dataset

        ds = load_dataset(data.split(":", 1)[1], data_dir=data_dir)
        return getattr(ds, split)
    return data


def _experiment(args: argparse.Namespace):
    """(config, model, train, val, test) from a YAML config; built-in datasets fill in the data."""
    from ..api import MultimodalModel
    from ..config import load_config

    cfg = load_config(args.config)
    if args.max_epochs is not None:
        cfg.train.max_epochs = args.max_epochs
    train, val, test = cfg.data.train, cfg.data.val, cfg.data.test
    modalities, target = None, None
    if cfg.data.dataset:
        from ..datasets import load_dataset

        ds = load_dataset(cfg.data.dataset, data_dir=args.data_dir or cfg.data.data_dir)
        train, test = ds.train, (test or ds.test)
        if cfg.data.task == "auto":  # a built-in dataset states its task: no inference needed
            cfg.data.task = ds.task
        modalities, target = ds.modalities, ds.target
    return cfg, MultimodalModel.from_config(cfg, modalities, target), train, val, test


def cmd_train(args: argparse.Namespace) -> int:
    from ..api import write_config
    from .interrupt import Interrupted, interruptible

    from ..train.distributed import is_rank_zero

    cfg, model, train, val, test = _experiment(args)
    auto_rows = None
    implicit = cfg.preset is None and "model" not in cfg.model_fields_set and not cfg.recipes  # the newcomer's default: no recipe chosen
    if cfg.preset == "auto" or implicit:  # every rank runs the same cross-validation, so that all agree on the recipe
        from ..auto import select

        try:
            with interruptible():
                model, auto_rows = select(model, train, cfg.auto, log=print if is_rank_zero() else lambda s: None, implicit=implicit)
        except Interrupted as stop:
            print(f"error: {stop} while choosing the recipe (preset: auto); nothing was written: run the same command to "
                  "search again, or set preset: none (or give a model section) to train without a search", file=sys.stderr)
            return stop.exit_code
    resolved = cfg.model_copy(deep=True)
    resolved.preset = "none" if auto_rows is None else "auto"  # the saved config.yaml repeats what this run did
    resolved.modalities = model.modalities
    resolved.data.target = model.target
    if args.resume:
        from .resume import resume_folder

        run = resume_folder(args.resume, resolved)
    if not is_rank_zero():  # under torchrun / srun: the other ranks train on their share (resuming too) and write nothing
        model.fit(train, val, resume=run if args.resume else None)
        return 0
    if not args.resume:
        run = _run_dir(args.run_dir or cfg.run_dir, Path(args.config).stem)
    stage = "preparing the data"
    try:
        with interruptible():
            write_config(resolved, run / "config.yaml")
            stage = "preparing the data or training"
            if auto_rows is not None:
                from ..auto import markdown

                resolved.model, resolved.train, resolved.preset = model.model_config, model.train_config, "none"
                resolved.recipes = model.recipes
                write_config(resolved, run / "auto_choice.yaml")  # the chosen recipe, to train again without the search
                (run / "auto.md").write_text(markdown(auto_rows, cfg.auto))
            # the test table is checked (columns, files, classes, targets) before training, not after it
            checked = model.fit(train, val, run_dir=run, check={"test": test} if test is not None else None,
                                resume=run if args.resume else None).checked
            stage = "saving the model"
            model.save(run / "model")
            stage = "evaluating on the test split"
            summary: dict[str, Any] = {"training": model.history, "data": {k: r.summary() for k, r in model.reports.items()}}
            if test is not None:
                summary["test"] = model.evaluate(checked.get("test", test))
                (model.reports.get("evaluate") or model.reports["test"]).write(run, "test")
            (run / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
            if cfg.train.logger == "mlflow":  # config, summary, metrics and the model as artefacts of the MLflow run
                from ..tracking.loggers import log_run_artifacts

                log_run_artifacts(run)
    except Interrupted as stop:
        from .resume import how_to_resume

        stage = "training" if stop.checkpoint is not None else stage
        print(f"error: {stop} while {stage}; {_kept(run)}", file=sys.stderr)
        print(how_to_resume(run, args.config, stop.checkpoint), file=sys.stderr)
        return stop.exit_code
    for name, line in summary["data"].items():
        print(f"{name}: {line}")
    if "test" in summary:
        print("test: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary["test"].items()))
    print(f"run folder: {run}")
    return 0


def _kept(run: Path) -> str:
    """What an interrupted run left in its folder, in words."""
    kept = sorted(p.name for p in run.iterdir()) if run.exists() else []
    saved = "a complete model in model/" if (run / "model").is_dir() and (run / "summary.json").exists() else "no model"
    files = ", ".join(kept) if kept else "nothing"
    return f"kept {run} ({files}): {saved}"


def _load(model_dir: str):
    from ..api import MultimodalModel

    return MultimodalModel.load(Path(model_dir))


def _with_errors(model, on_error: Optional[str]):
    if on_error:
        model.on_error = on_error
    return model


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = _with_errors(_load(args.model), args.on_error)
    metrics = model.evaluate(_table(args.data, args.data_dir, "test"))
    print(model.reports["evaluate"].summary())
    print(json.dumps(metrics, indent=2))
    return 0


def _write_table(frame, path: str) -> Path:
    """Write a frame as Parquet (.parquet / .pq) or CSV, creating the folder; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    return out


def cmd_predict(args: argparse.Namespace) -> int:
    model = _with_errors(_load(args.model), args.on_error)
    if getattr(args, "chunk_size", None):
        return _predict_chunked(model, args)
    frame = model.predict_frame(_table(args.data, args.data_dir, "test"))
    out = _write_table(frame, args.output)
    report = model.reports["predict"]
    print(report.summary())
    if report.skipped:
        report.write(out.parent, out.stem)
        print(f"skipped rows listed in {out.parent / (out.stem + '_skipped.csv')}")
    print(f"wrote {len(frame)} predictions to {out}")
    return 0


def _predict_chunked(model, args: argparse.Namespace) -> int:
    """Stream a large CSV/TSV or Parquet table in chunks of ``--chunk-size`` rows (Parquet: by row groups),
    appending predictions to the output."""
    from tqdm.auto import tqdm

    from ..data.readers import iter_table
    from ..data.storage import estimated_rows
    from ..errors import DataError

    source = Path(args.data)
    if source.suffix.lower() not in (".csv", ".tsv", ".txt", ".parquet", ".pq") or not source.exists():
        raise DataError("--chunk-size streams CSV/TSV or Parquet files only; give an existing .csv, .tsv or .parquet file", table=source)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    parquet = out.suffix.lower() in (".parquet", ".pq")
    if out.exists():
        out.unlink()
    total = estimated_rows(source)
    writer, written, read, skipped = None, 0, 0, []
    bar = tqdm(total=total, unit="row", desc="predict", disable=not sys.stderr.isatty() and not os.environ.get("MODALFUSE_PROGRESS"))
    try:
        for table in iter_table(source, args.chunk_size, model.na_values):
            chunk = table.frame
            try:  # file cells (images, audio, series) resolve against the table's folder
                frame = model.predict_frame(table)
            except DataError as err:
                raise DataError(err.reason, row=err.row, column=err.column, table=source, file=err.file) from None
            report = model.reports["predict"]
            read += report.rows_read
            skipped += report.skipped
            if parquet:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(str(out), table.schema)
                writer.write_table(table.cast(writer.schema))
            else:
                frame.to_csv(out, mode="a", header=written == 0, index=False)
            written += len(frame)
            bar.update(len(chunk))
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    print(f"{source}: {read} rows read, {written} used, {len(skipped)} skipped (chunks of {args.chunk_size})")
    if skipped:
        from ..data import SkipReport

        SkipReport(str(source), len(skipped), 0, skipped).write(out.parent, out.stem)
        print(f"skipped rows listed in {out.parent / (out.stem + '_skipped.csv')}")
    print(f"wrote {written} predictions to {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..serve.bundle import export_bundle

    eval_data = _table(args.eval, args.data_dir, "test") if args.eval else None
    path = export_bundle(args.source, args.bundle, eval_data=eval_data, eval_name=args.eval, data_files=args.data_file, onnx=args.onnx)
    print(f"bundle written to {path}")
    if args.register:
        from ..tracking.registry import register_bundle

        done = register_bundle(path, args.register, args.tracking_uri)
        parent = f", child of run {done['parent_run']}" if done["parent_run"] else ""
        print(f"registered models:/{done['name']}/{done['version']} in {done['tracking_uri']} (run {done['run_id']}{parent})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve.app import ServeSettings, serve

    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ModalfuseError(f"--api-key-env: environment variable {args.api_key_env} is unset or empty")
    elif args.api_key_file:
        try:
            key = Path(args.api_key_file).read_text().strip()
        except OSError as err:
            raise ModalfuseError(f"--api-key-file: cannot read {args.api_key_file} ({err})") from None
        if not key:
            raise ModalfuseError(f"--api-key-file: {args.api_key_file} is empty")
    source, model_id = args.bundle, str(args.bundle)
    if str(args.bundle).startswith("models:/"):
        from ..tracking.registry import resolve_models_uri

        source, info = resolve_models_uri(args.bundle, args.tracking_uri)
        model_id = f"models:/{info['name']}/{info['version']}"
    audit = None
    if args.audit_log:
        from ..serve.audit import AuditLog

        audit = AuditLog(args.audit_log, model_id, payloads=args.audit_payloads)
    settings = ServeSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, timeout_s=args.timeout_s,
                             max_body_mb=args.max_body_mb, api_key=key, threads=args.threads, max_records=args.max_records,
                             max_decoded_mb=args.max_decoded_mb, read_timeout_s=args.read_timeout_s,
                             max_connections=args.max_connections, audit=audit)
    print(f"serving {model_id} on http://{args.host}:{args.port} (max batch {args.max_batch}, max wait {args.max_wait_ms} ms)", flush=True)
    serve(source, args.host, args.port, settings, log_level=args.log_level)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(run_root=args.run_dir, seed=args.seed, epochs=args.epochs)
    return 0
