"""The ``modalfuse`` command: train, evaluate, predict, explain, report, retrieve, route, demo, datasets, registries, schema."""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional

from .errors import ModalfuseError


def _quiet() -> None:
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")


def _run_dir(base: str, name: str) -> Path:
    path = Path(base) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    suffix = 1
    while path.exists():
        path = Path(f"{path}-{suffix}")
        suffix += 1
    path.mkdir(parents=True)
    return path


def _table(data: Any, data_dir: Optional[str], split: str):
    """A table path, or ``dataset:NAME`` for a built-in dataset's split."""
    if isinstance(data, str) and data.startswith("dataset:"):
        from .datasets import load_dataset

        ds = load_dataset(data.split(":", 1)[1], data_dir=data_dir)
        return getattr(ds, split)
    return data


def _experiment(args: argparse.Namespace):
    """(config, model, train, val, test) from a YAML config; built-in datasets fill in the data."""
    from .api import MultimodalModel
    from .config import load_config

    cfg = load_config(args.config)
    if args.max_epochs:
        cfg.train.max_epochs = args.max_epochs
    train, val, test = cfg.data.train, cfg.data.val, cfg.data.test
    modalities, target = None, None
    if cfg.data.dataset:
        from .datasets import load_dataset

        ds = load_dataset(cfg.data.dataset, data_dir=args.data_dir or cfg.data.data_dir)
        train, test = ds.train, (test or ds.test)
        modalities, target = ds.modalities, ds.target
    return cfg, MultimodalModel.from_config(cfg, modalities, target), train, val, test


def cmd_train(args: argparse.Namespace) -> int:
    from .api import write_config

    cfg, model, train, val, test = _experiment(args)
    run = _run_dir(args.run_dir or cfg.run_dir, Path(args.config).stem)
    resolved = cfg.model_copy(deep=True)
    resolved.modalities = model.modalities
    resolved.data.target = model.target
    write_config(resolved, run / "config.yaml")
    model.fit(train, val, run_dir=run)
    model.save(run / "model")
    summary: dict[str, Any] = {"training": model.history, "data": {k: r.summary() for k, r in model.reports.items()}}
    if test is not None:
        summary["test"] = model.evaluate(test)
        model.reports["evaluate"].write(run, "test")
    (run / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    for name, line in summary["data"].items():
        print(f"{name}: {line}")
    if "test" in summary:
        print("test: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary["test"].items()))
    print(f"run folder: {run}")
    return 0


def _load(model_dir: str):
    from .api import MultimodalModel

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
    """Stream a large CSV/TSV in chunks of ``--chunk-size`` rows, appending predictions to the output."""
    import pandas as pd
    from tqdm.auto import tqdm

    from .data.readers import Table
    from .errors import DataError

    source = Path(args.data)
    if source.suffix.lower() not in (".csv", ".tsv", ".txt") or not source.exists():
        raise DataError("--chunk-size streams CSV/TSV files only; give an existing .csv or .tsv file", table=source)
    base = source.resolve().parent
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    parquet = out.suffix.lower() in (".parquet", ".pq")
    if out.exists():
        out.unlink()
    with open(source, "rb") as fh:
        total = max(0, sum(1 for _ in fh) - 1)
    reader = pd.read_csv(source, sep="\t" if source.suffix.lower() == ".tsv" else ",", chunksize=args.chunk_size)
    writer, written, read, skipped = None, 0, 0, []
    bar = tqdm(total=total, unit="row", desc="predict", disable=not sys.stderr.isatty() and not os.environ.get("MODALFUSE_PROGRESS"))
    try:
        for chunk in reader:
            try:  # file cells (images, audio, series) resolve against the table's folder
                frame = model.predict_frame(Table(chunk, str(source), base))
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
        from .data import SkipReport

        SkipReport(str(source), len(skipped), 0, skipped).write(out.parent, out.stem)
        print(f"skipped rows listed in {out.parent / (out.stem + '_skipped.csv')}")
    print(f"wrote {written} predictions to {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .serve.bundle import export_bundle

    eval_data = _table(args.eval, args.data_dir, "test") if args.eval else None
    path = export_bundle(args.source, args.bundle, eval_data=eval_data, eval_name=args.eval, data_files=args.data_file, onnx=args.onnx)
    print(f"bundle written to {path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.app import ServeSettings, serve

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
    settings = ServeSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, timeout_s=args.timeout_s,
                             max_body_mb=args.max_body_mb, api_key=key, threads=args.threads)
    print(f"serving {args.bundle} on http://{args.host}:{args.port} (max batch {args.max_batch}, max wait {args.max_wait_ms} ms)", flush=True)
    serve(args.bundle, args.host, args.port, settings, log_level=args.log_level)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(run_root=args.run_dir, seed=args.seed, epochs=args.epochs)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from . import datasets as D

    if args.action == "list":
        for name in D.list_datasets():
            print(f"{name:16s} {D.dataset_info(name).description.splitlines()[0]}")
    elif args.action == "info":
        info = D.dataset_info(args.name)
        print(f"{info.name}\n  {info.description}\n  reference: {info.reference}\n  licence: {info.licence}")
        for folder, files in info.folders.items():
            print(f"  folder {folder}: {len(files)} files")
    else:
        path = D.download(args.name, args.dest)
        print(f"{args.name} is ready in {path}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from .evaluate.benchmark import load_benchmark, run_benchmark, summarise, markdown_table

    cfg = load_benchmark(args.config)
    if args.seeds:
        cfg.seeds = list(range(args.seeds))
    if args.data_dir:
        cfg.data_dir = args.data_dir
    command = "modalfuse benchmark " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [args.config])
    frame = run_benchmark(cfg, command, Path(args.output) if args.output else None)
    print(markdown_table(summarise(frame)))
    print(f"results written to {Path(args.output or cfg.output) / cfg.name}.md (.csv, .png)")
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    import pandas as pd

    from .api import MultimodalModel
    from .evaluate.benchmark import machine_info, markdown_table
    from .evaluate.robustness import conflict_report, noise_curves, plot_curves, subset_accuracy, summarise_curves

    cfg, model, train, val, test = _experiment(args)
    if test is None:
        raise ModalfuseError("robustness needs a test split (data.test or a built-in dataset)")
    run = _run_dir(args.run_dir or cfg.run_dir, Path(args.config).stem + "-robustness")
    print(f"training {cfg.model.fusion.name} ...")
    model.fit(train, val, run_dir=run / "model_run")
    baseline = None
    if cfg.model.fusion.name != "late":
        print("training the late-fusion baseline ...")
        late = cfg.model.model_copy(update={"fusion": cfg.model.fusion.model_copy(update={"name": "late", "options": {}})})
        baseline = MultimodalModel(model.modalities, model.target, late, cfg.train, model.task, model.on_error)
        baseline.fit(train, val, run_dir=run / "baseline_run")
    features = model.featurize(test)
    curves = noise_curves(model, features, seed=cfg.train.seed)
    base_curves = noise_curves(baseline, baseline.featurize(test), seed=cfg.train.seed) if baseline else None
    summary = summarise_curves(curves, base_curves)
    subsets = subset_accuracy(model, features)
    conflict = conflict_report(model, features, cfg.train.seed)
    curves.to_csv(run / "noise_curves.csv", index=False)
    subsets.to_csv(run / "subsets.csv", index=False)
    plot_curves(curves, base_curves, run / "noise_curves.png", f"{cfg.model.fusion.name}: accuracy under corruption")
    report = "\n".join([
        f"# Robustness of {cfg.model.fusion.name} ({Path(args.config).name})", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", f"- machine: {machine_info()}",
        f"- command: `modalfuse {' '.join(sys.argv[1:])}`", f"- seed: {cfg.train.seed}; baseline for effective robustness: late fusion", "",
        "## Corruption of one modality (levels 0–1); relative = area under the curve, effective = vs late fusion", "",
        markdown_table(summary.round(4)), "", "## Modality subsets (the others missing)", "", markdown_table(subsets.round(4)), "",
        "## Conflict protocol (RCML)", "", markdown_table(pd.DataFrame([conflict]).round(4)), "",
    ])
    (run / "robustness.md").write_text(report)
    print(report)
    print(f"run folder: {run}")
    return 0


def cmd_retrieve(args: argparse.Namespace) -> int:
    from .align import AlignedModel

    model = AlignedModel.load(args.model)
    if args.on_error:
        model.on_error = args.on_error
    queries = _table(args.queries, args.data_dir, "test")
    gallery = _table(args.gallery, args.data_dir, "test") if args.gallery else queries
    frame = model.retrieve(queries, gallery, args.query_modality, args.gallery_modality, k=args.k)
    if args.output:
        out = _write_table(frame, args.output)
        print(f"wrote {len(frame)} rows ({frame['query_row'].nunique()} queries x top {args.k}) to {out}")
    else:
        print(frame.to_string(index=False))
    if not args.gallery:
        metrics = model.evaluate(queries, pairs=[(args.query_modality, args.gallery_modality)])
        print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    model = _with_errors(_load(args.model), args.on_error)
    data = _table(args.data, args.data_dir, "test")
    att = model.explain(data, n_permutations=args.permutations, seed=args.seed)
    out = _write_table(att.frame, args.output)
    for modality in args.integrated_gradients or ():
        from .evaluate.feature_attribution import write_attributions

        print(f"integrated gradients of {modality}: " + ", ".join(str(p) for p in write_attributions(model, data, modality, out.parent)[:3]) + " ...")
    print(att.summary().to_string(index=False))
    print(f"{att.method} Shapley values{f' ({att.n_permutations} orderings, standard errors in shapley_se_*)' if att.n_permutations else ''}; wrote {len(att.frame)} rows to {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report.html import build_report

    data = _table(args.data, args.data_dir, "test") if args.data else None
    report = build_report(args.run_dir, args.output, bundle=args.bundle, data=data, data_dir=args.data_dir, slices=args.slice or ())
    print(report.markdown.read_text())
    print(f"wrote {report.html} ({len(report.figures)} figures inlined) and {report.markdown}")
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from .schema import registries

    for name, line in registries()[args.command].describe().items():
        print(f"{name:18s} {line}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema import config_schema

    text = json.dumps(config_schema(), indent=2, ensure_ascii=False)
    if args.output:
        Path(args.output).write_text(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modalfuse", description="Multimodal learning: train, evaluate and predict from YAML configs.")
    p.set_defaults(light=False)  # commands that never touch the learning library (route) set light=True
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML config")
    t.add_argument("config")
    t.add_argument("--run-dir", help="parent folder of the run folder (default: the config's run_dir)")
    t.add_argument("--data-dir", help="folder holding local copies of built-in datasets")
    t.add_argument("--max-epochs", type=int, help="override train.max_epochs")
    t.set_defaults(func=cmd_train)

    for name, func, helptext in (("evaluate", cmd_evaluate, "metrics of a saved model on labelled data"), ("predict", cmd_predict, "write predictions of a saved model")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("model", help="a saved model folder (RUN/model)")
        s.add_argument("data", help="CSV/Parquet table, or dataset:NAME for a built-in test split")
        s.add_argument("--data-dir")
        s.add_argument("--on-error", choices=["raise", "skip"])
        if name == "predict":
            s.add_argument("--output", "-o", required=True, help="predictions file (.csv or .parquet)")
            s.add_argument("--chunk-size", type=int, help="stream a large CSV/TSV in chunks of N rows, appending to the output")
        s.set_defaults(func=func)

    e = sub.add_parser("export", help="write a checksummed model bundle (folder, or .tar.gz) with a model card")
    e.add_argument("source", help="a run folder or a saved model folder")
    e.add_argument("bundle", help="bundle folder, or a path ending in .tar.gz for an archive")
    e.add_argument("--eval", help="labelled table (or dataset:NAME) for metrics per modality combination in the card")
    e.add_argument("--data-dir")
    e.add_argument("--data-file", action="append", help="a training data file whose SHA-256 goes in the card (repeatable)")
    e.add_argument("--onnx", action="store_true", help="also export model.onnx (checked against PyTorch with onnxruntime)")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("serve", help="serve a bundle over HTTP (FastAPI + uvicorn; needs the serve extra)")
    v.add_argument("bundle", help="bundle folder or .tar.gz")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--max-batch", type=int, default=64, help="records per forward pass; 1 turns micro-batching off")
    v.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    v.add_argument("--timeout-s", type=float, default=10.0, help="prediction timeout (504 past it)")
    v.add_argument("--max-body-mb", type=float, default=5.0, help="request body limit (413 past it)")
    key = v.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", help="require this environment variable's value as a bearer token")
    key.add_argument("--api-key-file", help="require this file's content as a bearer token")
    v.add_argument("--threads", type=int, default=1, help="torch threads for inference")
    v.add_argument("--log-level", default="warning")
    v.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="train on the bundled digits image + keypad-tone audio demo (offline)")
    d.add_argument("--run-dir", default="runs")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--epochs", type=int, default=12)
    d.set_defaults(func=cmd_demo)

    ds = sub.add_parser("datasets", help="list, describe or download built-in datasets")
    dsub = ds.add_subparsers(dest="action", required=True)
    dsub.add_parser("list")
    info = dsub.add_parser("info")
    info.add_argument("name")
    dl = dsub.add_parser("download")
    dl.add_argument("name")
    dl.add_argument("--dest")
    ds.set_defaults(func=cmd_datasets)

    r = sub.add_parser("robustness", help="noise curves per modality, every modality subset, conflict protocol")
    r.add_argument("config")
    r.add_argument("--run-dir")
    r.add_argument("--data-dir")
    r.add_argument("--max-epochs", type=int)
    r.set_defaults(func=cmd_robustness)

    b = sub.add_parser("benchmark", help="fusion methods x seeds on a dataset: table (Markdown, CSV) and plot")
    b.add_argument("config")
    b.add_argument("--data-dir")
    b.add_argument("--seeds", type=int, help="use seeds 0..N-1 instead of the config's")
    b.add_argument("--output", help="results folder (default: the config's output)")
    b.set_defaults(func=cmd_benchmark)

    q = sub.add_parser("retrieve", help="top-k cross-modal retrieval with a saved aligned model (modalfuse.align.AlignedModel)")
    q.add_argument("model", help="a saved aligned model folder (AlignedModel.save)")
    q.add_argument("queries", help="CSV/Parquet table (or dataset:NAME) holding the query modality")
    q.add_argument("--query-modality", required=True)
    q.add_argument("--gallery-modality", required=True)
    q.add_argument("--gallery", help="table holding the gallery modality (default: the queries table, and Recall@k of its pairs is printed)")
    q.add_argument("-k", type=int, default=5, help="results per query (default 5)")
    q.add_argument("--output", "-o", help="write the results (.csv or .parquet) instead of printing them")
    q.add_argument("--data-dir")
    q.add_argument("--on-error", choices=["raise", "skip"])
    q.set_defaults(func=cmd_retrieve)

    x = sub.add_parser("explain", help="per-sample modality attribution (leave-one-out, Shapley, interactions) of a saved model")
    x.add_argument("model", help="a saved model folder (RUN/model)")
    x.add_argument("data", help="CSV/Parquet table (labelled: the loss is explained too), or dataset:NAME")
    x.add_argument("--output", "-o", required=True, help="attributions file (.parquet or .csv)")
    x.add_argument("--permutations", type=int, default=200, help="orderings sampled beyond 8 modalities (default 200)")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--integrated-gradients", "--ig", action="append", metavar="MODALITY",
                   help="also write integrated gradients of this modality beside the output (npz; overlays for images)")
    x.add_argument("--data-dir")
    x.add_argument("--on-error", choices=["raise", "skip"])
    x.set_defaults(func=cmd_explain)

    rp = sub.add_parser("report", help="one self-contained HTML report (and a Markdown summary) of a run folder")
    rp.add_argument("run_dir")
    rp.add_argument("--output", "-o", help="HTML file (default RUN_DIR/report.html)")
    rp.add_argument("--bundle", help="a bundle whose model card goes in the report")
    rp.add_argument("--data", help="labelled test table (default: the config's test table or built-in dataset)")
    rp.add_argument("--slice", action="append", help="a column to tabulate the metric by (repeatable)")
    rp.add_argument("--data-dir")
    rp.set_defaults(func=cmd_report)

    for name in ("fusions", "encoders", "heads", "kinds"):
        sub.add_parser(name, help=f"list the registered {name}").set_defaults(func=cmd_registry)
    sc = sub.add_parser("schema", help="print the JSON schema of a config, every component's options included")
    sc.add_argument("--output", "-o", help="write it to this file instead")
    sc.set_defaults(func=cmd_schema)

    from .routing.cli import add_route_parser  # argparse only; the router loads on use

    add_route_parser(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet()
    args = build_parser().parse_args(argv)
    if argv is None and not args.light:
        # a command-line process is short-lived: load the library, then keep its ~500k long-lived objects
        # (torch, Lightning) out of every full garbage collection (~250 ms each), the one at exit included
        from . import api  # noqa: F401

        gc.freeze()
    try:
        return args.func(args)
    except ModalfuseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
