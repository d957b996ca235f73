"""The ``modalfuse`` command: train, evaluate, predict, explain, report, retrieve, route, demo, datasets, registries, schema.

This package parses the command line and calls the library; the commands live in ``models`` and
``studies``, each importing what it needs when it runs (``modalfuse --help`` loads neither torch nor Lightning).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import warnings
from typing import Optional

from ..errors import ModalfuseError
from .models import cmd_demo, cmd_evaluate, cmd_export, cmd_predict, cmd_serve, cmd_train
from .studies import cmd_benchmark, cmd_datasets, cmd_explain, cmd_registry, cmd_report, cmd_retrieve, cmd_robustness, cmd_schema


def _quiet() -> None:
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")


def positive(text: str) -> int:
    """An argparse type: a whole number above zero (argparse names the option and exits 2 otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {value}")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    value = positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, got {value}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modalfuse", description="Multimodal learning: train, evaluate and predict from YAML configs.")
    p.set_defaults(light=False)  # commands that never touch the learning library (route) set light=True
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML config")
    t.add_argument("config")
    t.add_argument("--run-dir", help="parent folder of the run folder (default: the config's run_dir)")
    t.add_argument("--data-dir", help="folder holding local copies of built-in datasets")
    t.add_argument("--max-epochs", type=positive, help="override train.max_epochs")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest intact checkpoint (same config)")
    t.set_defaults(func=cmd_train)

    for name, func, helptext in (("evaluate", cmd_evaluate, "metrics of a saved model on labelled data"), ("predict", cmd_predict, "write predictions of a saved model")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("model", help="a saved model folder (RUN/model)")
        s.add_argument("data", help="CSV/Parquet table, or dataset:NAME for a built-in test split")
        s.add_argument("--data-dir")
        s.add_argument("--on-error", choices=["raise", "skip"])
        if name == "predict":
            s.add_argument("--output", "-o", required=True, help="predictions file (.csv or .parquet)")
            s.add_argument("--chunk-size", type=positive, help="stream a large CSV/TSV or Parquet table in chunks of N rows, appending to the output")
        s.set_defaults(func=func)

    e = sub.add_parser("export", help="write a checksummed model bundle (folder, or .tar.gz) with a model card")
    e.add_argument("source", help="a run folder or a saved model folder")
    e.add_argument("bundle", help="bundle folder, or a path ending in .tar.gz for an archive")
    e.add_argument("--eval", help="labelled table (or dataset:NAME) for metrics per modality combination in the card")
    e.add_argument("--data-dir")
    e.add_argument("--data-file", action="append", help="a training data file whose SHA-256 goes in the card (repeatable)")
    e.add_argument("--onnx", action="store_true", help="also export model.onnx (checked against PyTorch with onnxruntime)")
    e.add_argument("--register", metavar="NAME", help="also add the bundle to the MLflow model registry as a new version of NAME")
    e.add_argument("--tracking-uri", help="MLflow store for --register (default $MLFLOW_TRACKING_URI, else ./mlruns)")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("serve", help="serve a bundle over HTTP (FastAPI + uvicorn; needs the serve extra)")
    v.add_argument("bundle", help="bundle folder or .tar.gz, or models:/NAME/VERSION from the MLflow registry")
    v.add_argument("--tracking-uri", help="MLflow store holding models:/ (default $MLFLOW_TRACKING_URI, else ./mlruns)")
    v.add_argument("--audit-log", help="append one JSON line per request (time, key id, model, status, latency) to this file")
    v.add_argument("--audit-payloads", action="store_true", help="also put request bodies in the audit log (off: never)")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=port, default=8000)
    v.add_argument("--max-batch", type=positive, default=64, help="records per forward pass; 1 turns micro-batching off")
    v.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    v.add_argument("--timeout-s", type=seconds, default=10.0, help="prediction timeout (504 past it)")
    v.add_argument("--max-body-mb", type=seconds, default=5.0, help="request body limit (413 past it)")
    v.add_argument("--max-records", type=positive, default=1024, help="records per request (413 past it)")
    v.add_argument("--max-decoded-mb", type=seconds, default=256.0,
                   help="decoded float32 size of one request's images/audio, read from file headers (413 past it)")
    v.add_argument("--read-timeout-s", type=seconds, default=30.0, help="a request must arrive whole within this time")
    v.add_argument("--max-connections", type=positive, default=256, help="open connections at once (503 past it)")
    key = v.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", help="require this environment variable's value as a bearer token")
    key.add_argument("--api-key-file", help="require this file's content as a bearer token")
    v.add_argument("--threads", type=positive, default=1, help="torch threads for inference")
    v.add_argument("--log-level", default="warning")
    v.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="train on the bundled digits image + keypad-tone audio demo (offline)")
    d.add_argument("--run-dir", default="runs")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--epochs", type=positive, default=12)
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
    r.add_argument("--max-epochs", type=positive)
    r.set_defaults(func=cmd_robustness)

    b = sub.add_parser("benchmark", help="fusion methods x seeds on a dataset: table (Markdown, CSV) and plot")
    b.add_argument("config")
    b.add_argument("--data-dir")
    b.add_argument("--seeds", type=positive, help="use seeds 0..N-1 instead of the config's")
    b.add_argument("--output", help="results folder (default: the config's output)")
    b.set_defaults(func=cmd_benchmark)

    q = sub.add_parser("retrieve", help="top-k cross-modal retrieval with a saved aligned model (modalfuse.align.AlignedModel)")
    q.add_argument("model", help="a saved aligned model folder (AlignedModel.save)")
    q.add_argument("queries", help="CSV/Parquet table (or dataset:NAME) holding the query modality")
    q.add_argument("--query-modality", required=True)
    q.add_argument("--gallery-modality", required=True)
    q.add_argument("--gallery", help="table holding the gallery modality (default: the queries table, and Recall@k of its pairs is printed)")
    q.add_argument("-k", type=positive, default=5, help="results per query (default 5)")
    q.add_argument("--output", "-o", help="write the results (.csv or .parquet) instead of printing them")
    q.add_argument("--data-dir")
    q.add_argument("--on-error", choices=["raise", "skip"])
    q.set_defaults(func=cmd_retrieve)

    x = sub.add_parser("explain", help="per-sample modality attribution (leave-one-out, Shapley, interactions) of a saved model")
    x.add_argument("model", help="a saved model folder (RUN/model)")
    x.add_argument("data", help="CSV/Parquet table (labelled: the loss is explained too), or dataset:NAME")
    x.add_argument("--output", "-o", required=True, help="attributions file (.parquet or .csv)")
    x.add_argument("--permutations", type=positive, default=200, help="orderings sampled beyond 8 modalities (default 200)")
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

    from ..routing.cli import add_route_parser  # argparse only; the router loads on use
    from .sweeps import add_tune_parser

    add_tune_parser(sub)

    add_route_parser(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: idle threads sleep (train/threads.py)
    _quiet()
    args = build_parser().parse_args(argv)
    try:
        if argv is None and not args.light:
            # a command-line process is short-lived: load the library, then keep its ~500k long-lived objects
            # (torch, Lightning) out of every full garbage collection (~250 ms each), the one at exit included
            from .. import api  # noqa: F401

            gc.freeze()
        return args.func(args)
    except ModalfuseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (SIGINT); nothing was saved by this command", file=sys.stderr)
        return 130
    except OSError as err:  # an unwritable, read-only or full folder: say which file, not a traceback
        where = err.filename or "a file"
        print(f"error: {where}: {err.strerror or err} (check that the folder exists, is writable and has space)", file=sys.stderr)
        return 2



