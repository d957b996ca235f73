"""TEA-seq PBMCs (RNA + 46 surface proteins): cell types from RNA only, protein only and fused; the 5,048 protein-only
cells classified with RNA missing; protein predicted from RNA by the joint VAE, scvi-tools totalVI and ridge.

Run in an environment with scvi-tools for the totalVI row (e.g. /work/venv-singlecell-bench, see docs/singlecell.md);
without it the row says so. Every split: 80 % of the 1,262 paired cells train, 20 % held out, stratified, per seed.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from common import mean_std, parse_args, publish  # noqa: E402
from singlecell_common import Meter, dense, header, teaseq  # noqa: E402


def extra(p):
    p.add_argument("--epochs", type=int, default=40, help="classifier epochs (early stopping on a validation tenth)")
    p.add_argument("--vae-epochs", type=int, default=60)
    p.add_argument("--totalvi-epochs", type=int, default=200)
    p.add_argument("--translation-seeds", type=int, default=3, help="seeds of the RNA → protein comparison")


def macro_f1(y, pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", labels=sorted(set(y)), zero_division=0))


def classifiers(train, hold, prot, seed, epochs, vae_epochs=60):
    """accuracy / macro-F1 per (model, test set)."""
    from sklearn.linear_model import LogisticRegression

    from modalfuse.api import MultimodalModel
    from modalfuse.kinds.counts import normalize_log1p, select_features
    from modalfuse.kinds.sparse import csr_from_cells

    out = {}
    tr = {"max_epochs": epochs, "batch_size": 64, "progress": False, "seed": seed, "patience": 8}
    rna = {"name": "rna", "kind": "counts", "options": {"n_features": 2000}}
    adt = {"name": "adt", "kind": "counts", "options": {"n_features": 0}}
    specs = {"rna only": ([rna], {}, {}), "protein only": ([adt], {}, {}),
             "fused (concat, modality dropout 0.3)": ([rna, adt], {"modality_dropout": 0.3}, {}),
             "fused (late, modality dropout 0.3)": ([rna, adt], {"modality_dropout": 0.3}, {"fusion": {"name": "late"}})}
    for label, (mods, more, model_cfg) in specs.items():
        model = MultimodalModel(mods, "celltype", model=model_cfg, train={**tr, **more})
        model.fit(train[[m["name"] for m in mods] + ["celltype"]])
        pred = model.predict(hold)
        out[(label, "paired held-out")] = (np.mean(pred == hold["celltype"].to_numpy()), macro_f1(hold["celltype"].to_numpy(), pred))
        if "adt" in [m["name"] for m in mods]:
            pred = model.predict(prot if "rna" in [m["name"] for m in mods] else prot.drop(columns=["rna"]))
            out[(label, "protein-only cells (RNA missing)")] = (np.mean(pred == prot["celltype"].to_numpy()), macro_f1(prot["celltype"].to_numpy(), pred))
    # the joint VAE as the fused model: logistic regression on its posterior means; a cell without RNA is embedded
    # from its protein expert alone (product of experts), so the same classifier reads it
    from modalfuse.singlecell import JointVAE

    vae = JointVAE({"rna": {"likelihood": "nb", "n_features": 2000}, "adt": "nbmix"}, epochs=vae_epochs, batch_size=128, seed=seed)
    vae.fit(train[["rna", "adt"]])
    head = LogisticRegression(max_iter=3000).fit(vae.embed(train[["rna", "adt"]]).to_numpy(), train["celltype"])
    label = "fused: JointVAE embedding (PoE) + logistic regression"
    for name, frame in (("paired held-out", hold), ("protein-only cells (RNA missing)", prot)):
        pred = head.predict(vae.embed(frame[["rna", "adt"]]).to_numpy())
        out[(label, name)] = (np.mean(pred == frame["celltype"].to_numpy()), macro_f1(frame["celltype"].to_numpy(), pred))
    # logistic regression baselines: log-normalised RNA (2,000 variable genes from train), log1p protein
    def rna_x(frame, genes):
        m = csr_from_cells(list(frame["rna"]), frame["rna"].iloc[0].features.n)
        return normalize_log1p(m)[:, genes]
    genes = select_features(csr_from_cells(list(train["rna"]), train["rna"].iloc[0].features.n), 2000)
    lr = LogisticRegression(max_iter=2000, C=0.1).fit(rna_x(train, genes), train["celltype"])
    pred = lr.predict(rna_x(hold, genes))
    out[("logistic regression, RNA", "paired held-out")] = (np.mean(pred == hold["celltype"].to_numpy()), macro_f1(hold["celltype"].to_numpy(), pred))
    lr = LogisticRegression(max_iter=2000, C=1.0).fit(np.log1p(dense(train["adt"])), train["celltype"])
    for name, frame in (("paired held-out", hold), ("protein-only cells (RNA missing)", prot)):
        pred = lr.predict(np.log1p(dense(frame["adt"])))
        out[("logistic regression, protein", name)] = (np.mean(pred == frame["celltype"].to_numpy()), macro_f1(frame["celltype"].to_numpy(), pred))
    return out


def translation(train, hold, seed, args):
    """per-protein Pearson of log1p(predicted) vs log1p(observed) on the held-out cells, with time and peak memory."""
    from sklearn.linear_model import RidgeCV

    from modalfuse.kinds.sparse import csr_from_cells
    from modalfuse.evaluate.translation import per_feature_pearson, summary
    from modalfuse.kinds.counts import normalize_log1p
    from modalfuse.singlecell import JointVAE

    rows = {}
    y_hold = np.log1p(dense(hold["adt"]))
    with Meter() as m:
        vae = JointVAE({"rna": {"likelihood": "nb", "n_features": 2000}, "adt": "nbmix"}, epochs=args.vae_epochs, batch_size=128, seed=seed)
        vae.fit(train[["rna", "adt"]])
        pred = vae.translate(hold[["rna", "adt"]], "adt", ["rna"])
    rows["modalfuse JointVAE (RNA → protein)"] = (summary(per_feature_pearson(np.log1p(pred.to_numpy()), y_hold)), m)
    genes = vae.preprocessors["rna"].selected
    n_genes = train["rna"].iloc[0].features.n
    x_tr = normalize_log1p(csr_from_cells(list(train["rna"]), n_genes))[:, genes]
    x_ho = normalize_log1p(csr_from_cells(list(hold["rna"]), n_genes))[:, genes]
    with Meter() as m:
        ridge = RidgeCV(alphas=[1, 10, 100, 1000, 10000]).fit(x_tr.toarray(), np.log1p(dense(train["adt"])))
        pred = ridge.predict(x_ho.toarray())
    rows[f"ridge on log-normalised RNA (alpha {ridge.alpha_:g} by CV)"] = (summary(per_feature_pearson(pred, y_hold)), m)
    try:
        import anndata
        import scvi
    except ImportError as err:
        rows["scvi-tools totalVI"] = (f"not run: {err}", None)
        return rows
    scvi.settings.seed = seed
    with Meter() as m:
        x = csr_from_cells(list(train["rna"]) + list(hold["rna"]), n_genes)[:, genes]
        prot = np.concatenate([dense(train["adt"]), np.zeros((len(hold), 46), np.float32)])  # held-out protein hidden
        with pd.option_context("future.infer_string", False):
            ad = anndata.AnnData(X=x.astype(np.float32), obs=pd.DataFrame({"batch": ["train"] * len(train) + ["held_out"] * len(hold)},
                                 index=pd.Index([f"c{i}" for i in range(x.shape[0])], dtype=object)))
        ad.obsm["protein"] = prot
        scvi.model.TOTALVI.setup_anndata(ad, protein_expression_obsm_key="protein", batch_key="batch")
        model = scvi.model.TOTALVI(ad)
        model.train(max_epochs=args.totalvi_epochs, accelerator="cpu", enable_progress_bar=False)
        _, p = model.get_normalized_expression(indices=np.arange(len(train), x.shape[0]), transform_batch="train",
                                               n_samples=25, return_mean=True, return_numpy=True)
    rows[f"scvi-tools {scvi.__version__} totalVI denoised protein ({args.totalvi_epochs} epochs)"] = (summary(per_feature_pearson(np.log1p(p), y_hold)), m)
    return rows


def main() -> None:
    args = parse_args(__doc__, "singlecell_teaseq", extra=extra)
    if args.quick:
        args.epochs, args.vae_epochs, args.totalvi_epochs, args.translation_seeds = 5, 5, 5, 1
    from sklearn.model_selection import train_test_split

    load0, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    paired, prot = teaseq(args.data_dir)
    cls: dict = {}
    trans: dict = {}
    for seed in range(args.seeds):
        train, hold = train_test_split(paired, test_size=0.2, random_state=seed, stratify=paired["celltype"])
        for key, value in classifiers(train, hold, prot, seed, args.epochs, args.vae_epochs).items():
            cls.setdefault(key, []).append(value)
        if seed < args.translation_seeds:
            for key, (s, meter) in translation(train, hold, seed, args).items():
                trans.setdefault(key, []).append((s, meter))
        print(f"seed {seed} done", file=sys.stderr)
    lines = header("TEA-seq PBMCs: cell types from RNA, protein, fused; protein predicted from RNA", args.threads, load0, started,
                   f"0..{args.seeds - 1} (classification), " + (f"0..{args.translation_seeds - 1} (translation)" if args.translation_seeds else "no translation run"), [
                       f"data: citeseq_teaseq_matilda: {len(paired)} cells with RNA ({paired['rna'].iloc[0].features.n} genes) + 46 proteins, "
                       f"{paired['celltype'].nunique()} types; {len(prot)} cells with protein only (test_adt.h5)",
                       "split per seed: 80 % of the paired cells train (10 % of that validates early stopping), 20 % held out, stratified by type",
                       f"classifiers: counts kind (RNA: 2,000 variable genes, log1p of counts per 10,000; protein: all 46, log1p), "
                       f"counts_mlp encoders, concat fusion, ≤ {args.epochs} epochs; logistic regression on the same features (C 0.1 RNA, 1 protein)",
                       "macro-F1 is over the types present in the test set; the protein-only cells hold all 11 types",
                   ])
    lines += ["## Cell-type classification (mean ± std over seeds)", "", "| model | test cells | accuracy % | macro-F1 |", "|---|---|---|---|"]
    for (label, where), vals in cls.items():
        lines.append(f"| {label} | {where} | {mean_std([v[0] for v in vals], percent=True, digits=1)} | {mean_std([v[1] for v in vals], digits=3)} |")
    if trans:
        lines += ["", "## Protein predicted from RNA on the held-out paired cells", "",
                  "Per-protein Pearson r of log1p(predicted) with log1p(observed counts) over the held-out cells (46 proteins), "
                  "mean ± std over seeds of the per-seed mean and median; time and peak memory (resident, above the start) of fit + predict.", "",
                  "| method | mean r | median r | wall s | peak MiB |", "|---|---|---|---|---|"]
        for label, vals in trans.items():
            if isinstance(vals[0][0], str):
                lines.append(f"| {label} | {vals[0][0]} | | | |")
                continue
            lines.append(f"| {label} | {mean_std([v[0]['mean'] for v in vals], digits=3)} | {mean_std([v[0]['median'] for v in vals], digits=3)} | "
                         f"{mean_std([v[1].seconds for v in vals], digits=1)} | {mean_std([v[1].peak_mib for v in vals], digits=0)} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
