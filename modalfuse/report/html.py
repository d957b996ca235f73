"""``modalfuse report RUN_DIR``: one self-contained HTML file (figures inlined as base64 PNG, no network) and a
Markdown summary for CI logs.

From the run folder: the config, the data reports (rows read / used / skipped, missing per modality), the
training summary and learning curves (``metrics.csv``), robustness curves (``noise_curves.csv`` of
``modalfuse robustness``) and cost scaling (``*cost_scaling*.csv``) where present. With the saved model and a
labelled test table (``data=``, else the config's ``data.test`` or built-in dataset): test metrics, confusion
matrix, reliability diagram, metrics with only each subset of modalities present, fusion weights, modality
attribution (Shapley) and slice tables. With a bundle: its model card.
"""
from __future__ import annotations

import base64
import html
import itertools
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from . import plots

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111;background:#fff;line-height:1.4}
h1{border-bottom:2px solid #333}h2{border-bottom:1px solid #aaa;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}
pre{background:#f6f6f6;border:1px solid #ddd;padding:.6em;overflow:auto;font-size:.85em;max-height:28em}
figure{margin:1em 0;display:inline-block;vertical-align:top}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#333}.note{color:#444;font-size:.9em}
@media print{body{max-width:none}pre{max-height:none;overflow:visible}h2{page-break-after:avoid}figure{page-break-inside:avoid}}
"""


@dataclass
class Report:
    """Where the report went, and what is in it."""

    html: Path
    markdown: Path
    figures: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Doc:
    def __init__(self, title: str, figure_dir: Path) -> None:
        self.parts: list[str] = []
        self.md: list[str] = [f"# {title}", ""]
        self.title = title
        self.figure_dir = figure_dir
        self.figures: list[str] = []
        self.sections: list[str] = []

    def section(self, name: str) -> None:
        self.sections.append(name)
        self.parts.append(f"<h2>{html.escape(name)}</h2>")
        self.md += [f"## {name}", ""]

    def text(self, text: str, note: bool = False) -> None:
        self.parts.append(f"<p{' class=note' if note else ''}>{html.escape(text)}</p>")
        self.md += [text, ""]

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, frame: pd.DataFrame, digits: int = 4, markdown: bool = True) -> None:
        shown = frame.copy()
        for c in shown.columns:
            if pd.api.types.is_float_dtype(shown[c]):
                shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}g}" if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3) else f"{v:.{digits}f}")
        self.parts.append(shown.to_html(index=False, escape=True, border=0))
        if markdown:
            head = [str(c) for c in shown.columns]
            self.md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            self.md += ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
            self.md.append("")

    def figure(self, path: Path, caption: str) -> None:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        self.figures.append(caption)
        self.parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        self.md += [f"- figure: {caption}", ""]

    def fig_path(self, name: str) -> Path:
        return self.figure_dir / f"{len(self.figures):02d}_{name}.png"

    def render(self) -> str:
        return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
                f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
                f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1>" + "\n".join(self.parts) + "</body></html>\n")


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _test_data(run: Path, data: Any, data_dir: Optional[str]) -> tuple[Any, str]:
    if data is not None:
        return data, str(data) if isinstance(data, (str, Path)) else "the given table"
    if not (run / "config.yaml").exists():
        return None, ""
    from ..config import load_config

    cfg = load_config(run / "config.yaml")
    if cfg.data.test:
        return cfg.data.test, cfg.data.test
    if cfg.data.dataset:
        from ..datasets import load_dataset

        try:
            ds = load_dataset(cfg.data.dataset, data_dir=data_dir or cfg.data.data_dir, download=False)
        except Exception as err:  # a built-in dataset that is not on this machine: report without test sections
            return None, f"dataset {cfg.data.dataset} not available ({str(err).splitlines()[0]})"
        return ds.test, f"dataset:{cfg.data.dataset} (test split)"
    return None, ""


def build_report(
    run_dir: str | Path,
    output: Optional[str | Path] = None,
    *,
    bundle: Optional[str | Path] = None,
    data: Any = None,
    data_dir: Optional[str] = None,
    slices: Sequence[str] = (),
    explain_rows: int = 500,
    seed: int = 0,
) -> Report:
    """Write ``output`` (default RUN_DIR/report.html) and a Markdown summary beside it (same stem, .md)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"report: {run} is not a folder (give a run folder written by `modalfuse train`)")
    if not any((run / name).exists() for name in ("config.yaml", "metrics.csv", "model", "summary.json")):
        raise ConfigError(f"report: {run} holds no run (no config.yaml, metrics.csv, model/ or summary.json)")
    out = Path(output) if output else run / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="modalfuse-report-") as tmp:
        doc = _Doc(f"modalfuse report: {run.resolve().name}", Path(tmp))
        doc.text(f"Run folder {run.resolve()}; written {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.", note=True)
        _run_sections(doc, run)
        model = None
        if (run / "model" / "model.json").exists():
            from ..api import MultimodalModel

            model = MultimodalModel.load(run / "model")
        test, source = _test_data(run, data, data_dir)
        if model is not None and test is not None:
            _model_sections(doc, model, test, source, slices, explain_rows, seed)
        else:
            notes.append("no saved model or no labelled test table: test sections left out" + (f" ({source})" if source else ""))
            doc.text(notes[-1], note=True)
        _extra_sections(doc, run)
        if bundle is not None:
            _card_section(doc, bundle)
        if (run / "config.yaml").exists():
            doc.section("Config")
            doc.pre((run / "config.yaml").read_text())
        out.write_text(doc.render())
        md = out.with_suffix(".md")
        md.write_text("\n".join(doc.md) + "\n")
    return Report(out, md, doc.figures, doc.sections, notes)


def _run_sections(doc: _Doc, run: Path) -> None:
    reports = sorted(run.glob("*_report.json"))
    if reports:
        doc.section("Data")
        rows = []
        for path in reports:
            r = _read_json(path) or {}
            rows.append({"split": path.name[: -len("_report.json")], "table": r.get("table") or "", "rows read": r.get("rows_read"),
                         "rows used": r.get("rows_used"), "rows skipped": r.get("rows_skipped"),
                         "missing per modality": ", ".join(f"{k} {v}" for k, v in (r.get("missing") or {}).items())})
        doc.table(pd.DataFrame(rows))
    summary = _read_json(run / "summary.json")
    metrics_files = [run / "metrics.csv"] if (run / "metrics.csv").exists() else sorted(run.glob("member*/metrics.csv"))
    if summary or metrics_files:
        doc.section("Training")
    if summary and isinstance(summary.get("training"), dict):
        t = summary["training"]
        doc.text("training: " + ", ".join(f"{k} {v}" for k, v in t.items() if not isinstance(v, (dict, list))))
    if summary and summary.get("test"):
        doc.text("test metrics recorded at training time:")
        doc.table(pd.DataFrame([summary["test"]]))
    for path in metrics_files:
        frame = pd.read_csv(path)
        if len(frame) and "epoch" in frame:
            name = path.parent.name if path.parent != run else ""
            doc.figure(plots.learning_curves(frame, doc.fig_path("learning"), f"learning curves {name}".strip()),
                       f"learning curves from {path.relative_to(run)}")


def _model_sections(doc: _Doc, model, test: Any, source: str, slices: Sequence[str], explain_rows: int, seed: int) -> None:
    from dataclasses import replace

    import torch

    from ..evaluate.slices import model_slices

    features = model.featurize(test)
    res = model.outputs(features)
    head = model.net.head
    y = features.target.numpy()
    names = list(features.masks)
    doc.section("Test evaluation")
    doc.text(f"{len(features)} labelled rows from {source}; {model.reports['evaluate'].summary()}")
    metrics = model.evaluate(features)
    doc.table(pd.DataFrame([metrics]))
    classification = model.task == "classification"
    if classification:
        proba = head.proba(res["output"]).numpy()
        doc.figure(plots.confusion_matrix(y, proba.argmax(axis=1), model.target_encoder.classes, doc.fig_path("confusion")), "confusion matrix (test)")
        doc.figure(plots.reliability(proba, y, doc.fig_path("reliability"), "test"), "reliability diagram (test)")
    key = "accuracy" if classification else "mae"
    rows = []
    for k in range(len(names), 0, -1):
        for subset in itertools.combinations(names, k):
            masks = {n: features.masks[n] if n in subset else torch.zeros_like(features.masks[n]) for n in names}
            rows.append({"modalities": "+".join(subset), "count": k, key: model.evaluate(replace(features, masks=masks))[key]})
    subsets = pd.DataFrame(rows)
    doc.section("Robustness to missing modalities")
    doc.figure(plots.subset_bars(subsets, doc.fig_path("subsets"), key), f"test {key} with only each subset of modalities present")
    doc.table(subsets.drop(columns="count"))
    if res["weights"] is not None:
        doc.section("Fusion weights")
        doc.figure(plots.modality_weights(res["weights"].numpy(), list(model.net.fusion.modalities), doc.fig_path("weights")),
                   "per-sample modality weights of the fusion (test)")
    doc.section("Modality attribution")
    n = min(explain_rows, len(features))
    part = features.subset(np.random.default_rng(seed).permutation(len(features))[:n]) if n < len(features) else features
    att = model.explain(part)
    doc.text(f"{att.method} Shapley values over modality subsets through the missing-modality path, {n} test rows"
             f"{' (random subset, seed ' + str(seed) + ')' if n < len(features) else ''}; quantities: {', '.join(att.frame['quantity'].unique())}. "
             "A positive value raises the predicted class's probability (or the regression output); for the loss, a negative value "
             "means the modality lowers the loss. Interactions: > 0 complementary, < 0 redundant.")
    quantity = att.frame["quantity"].iloc[0]
    doc.figure(plots.attribution_summary(att.frame, att.modalities, doc.fig_path("attribution"), quantity), f"modality attribution of {quantity}")
    doc.table(att.summary())
    if len(att.interactions()):
        doc.table(att.interactions())
    doc.section("Slices")
    doc.text("Metric per slice with bootstrap 95 % intervals (1,000 resamples); gap = slice − overall; "
             "p: permutation test against random sets of the same size; significant: p < 0.05 / number of slices (Bonferroni).", note=True)
    table = model_slices(model, test, list(slices), n_boot=1000, seed=seed)
    doc.table(table)


def _extra_sections(doc: _Doc, run: Path) -> None:
    curves = run / "noise_curves.csv"
    costs = sorted(run.glob("*cost_scaling*.csv"))
    if curves.exists() or costs:
        doc.section("Robustness and cost")
    if curves.exists():
        doc.figure(plots.robustness_curves(pd.read_csv(curves), doc.fig_path("noise")), "accuracy under corruption of one modality")
    for path in costs:
        doc.figure(plots.cost_scaling(pd.read_csv(path), doc.fig_path("cost")), f"cost scaling ({path.name})")


def _card_section(doc: _Doc, bundle: str | Path) -> None:
    from ..serve.bundle import load_bundle

    card = load_bundle(bundle).card
    doc.section("Model card")
    doc.pre(json.dumps(card, indent=2, default=str))
