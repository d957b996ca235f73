"""Commands that study or list things: benchmark, robustness, retrieve, explain, report, datasets, registries, schema."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import ModalfuseError
from .models import _experiment, _load, _run_dir, _table, _with_errors, _write_table


def cmd_benchmark(args: argparse.Namespace) -> int:
    from ..evaluate.benchmark import load_benchmark, run_benchmark, summarise, markdown_table

    cfg = load_benchmark(args.config)
    if args.seeds:
        cfg.seeds = list(range(args.seeds))
    if args.data_dir:
        cfg.data_dir = args.data_dir
    command = "modalfuse benchmark " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [args.config])
    frame = run_benchmark(cfg, command, Path(args.output) if args.output else None)
    print(markdown_table(summarise(frame, cfg.metrics)))
    print(f"results written to {Path(args.output or cfg.output) / cfg.name}.md (.csv, .png)")
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..api import MultimodalModel
    from ..evaluate.benchmark import machine_info, markdown_table
    from ..evaluate.robustness import conflict_report, noise_curves, plot_curves, subset_accuracy, summarise_curves

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
    from ..align import AlignedModel

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
        from ..evaluate.feature_attribution import write_attributions

        print(f"integrated gradients of {modality}: " + ", ".join(str(p) for p in write_attributions(model, data, modality, out.parent)[:3]) + " ...")
    print(att.summary().to_string(index=False))
    print(f"{att.method} Shapley values{f' ({att.n_permutations} orderings, standard errors in shapley_se_*)' if att.n_permutations else ''}; wrote {len(att.frame)} rows to {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.html import build_report

    data = _table(args.data, args.data_dir, "test") if args.data else None
    report = build_report(args.run_dir, args.output, bundle=args.bundle, data=data, data_dir=args.data_dir, slices=args.slice or ())
    print(report.markdown.read_text())
    print(f"wrote {report.html} ({len(report.figures)} figures inlined) and {report.markdown}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .. import datasets as D

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


def cmd_registry(args: argparse.Namespace) -> int:
    from ..schema import registries

    for name, line in registries()[args.command].describe().items():
        print(f"{name:18s} {line}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from ..schema import config_schema

    text = json.dumps(config_schema(), indent=2, ensure_ascii=False)
    if args.output:
        Path(args.output).write_text(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0
