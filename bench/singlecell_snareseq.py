"""SNARE-seq mouse cortex (RNA + ATAC): joint embedding of the modalfuse JointVAE vs scvi-tools MultiVI, with some
cells unpaired. kNN cell-type transfer on the embedding, batch mixing, RNA → ATAC and ATAC → RNA prediction, wall
time and peak memory. A PCA of log-normalised RNA is the single-modality reference row.

Cells are subsampled (``--cells``) and peaks cut to the ``--peaks`` most often detected (the same for both methods)
to fit a shared 2-core machine; both say so in the output.
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
from singlecell_common import Meter, header  # noqa: E402


def extra(p):
    p.add_argument("--cells", type=int, default=3000)
    p.add_argument("--peaks", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=30, help="training epochs of both methods")
    p.add_argument("--multivi-lr", type=float, default=None, help="MultiVI learning rate (default: its own, 1e-4)")


def load(data_dir: str, n_cells: int, n_peaks: int, seed: int):
    from scipy import sparse

    d = Path(data_dir) / "multiome_snareseq_mop_scmomat"
    rna = sparse.load_npz(d / "GxC1.npz").T.tocsr().astype(np.float32)
    atac = sparse.load_npz(d / "RxC1.npz").T.tocsr().astype(np.float32)
    meta = pd.read_csv(d / "meta_c1.csv", index_col=0)
    genes = [g.strip() for g in (d / "genes.txt").read_text().split("\n") if g.strip()]
    regions = [r.strip() for r in (d / "regions.txt").read_text().split("\n") if r.strip()]
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(meta), size=min(n_cells, len(meta)), replace=False))
    rna, atac, meta = rna[keep], atac[keep], meta.iloc[keep]
    ok = (np.asarray(rna.sum(axis=1)).ravel() > 0) & (np.asarray(atac.sum(axis=1)).ravel() > 0)
    rna, atac, meta = rna[ok], atac[ok], meta[ok]
    freq = np.asarray((atac > 0).sum(axis=0)).ravel()
    peaks = np.sort(np.argsort(-freq)[:n_peaks])
    return rna, atac[:, peaks].tocsr(), meta, genes, [regions[i] for i in peaks]


def knn_scores(z: np.ndarray, meta: pd.DataFrame, seed: int) -> dict[str, float]:
    """kNN (k 15) label transfer between random halves, both ways averaged; batch entropy of 30 neighbours / log(#batches)."""
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    rng = np.random.default_rng(seed)
    half = rng.random(len(z)) < 0.5
    out = {}
    for col, name in (("cluster (remapped)", "broad"), ("Ident", "fine")):
        y = meta[col].astype(str).to_numpy()
        accs = []
        for a, b in ((half, ~half), (~half, half)):
            accs.append(float((KNeighborsClassifier(15).fit(z[a], y[a]).predict(z[b]) == y[b]).mean()))
        out[f"kNN {name}"] = float(np.mean(accs))
    batches = meta["Batch"].astype(str).to_numpy()
    levels = {b: i for i, b in enumerate(sorted(set(batches)))}
    codes = np.array([levels[b] for b in batches])
    idx = NearestNeighbors(n_neighbors=31).fit(z).kneighbors(z, return_distance=False)[:, 1:]
    counts = np.stack([np.bincount(codes[row], minlength=len(levels)) for row in idx]) / 30.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -(np.where(counts > 0, counts * np.log(counts), 0)).sum(axis=1)
    out["batch entropy"] = float(ent.mean() / np.log(len(levels)))
    return out


def lognorm(x) -> np.ndarray:
    x = np.asarray(x.todense() if hasattr(x, "todense") else x, dtype=np.float64)
    return np.log1p(x / np.maximum(x.sum(axis=1, keepdims=True), 1e-12) * 1e4)


def run_ours(rna, atac, meta, genes, peaks, rna_only, atac_only, args, seed):
    import anndata

    from modalfuse.data.singlecell import read_cells
    from modalfuse.singlecell import JointVAE

    cells = pd.Index([str(c) for c in meta.index], dtype=object)
    with pd.option_context("future.infer_string", False):
        ad_rna = anndata.AnnData(rna, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
        ad_atac = anndata.AnnData(atac, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=pd.Index(peaks, dtype=object)))
    # the unpaired cells: RNA-only cells lose their ATAC, ATAC-only cells their RNA
    frame, _ = read_cells({"rna": ad_rna[~atac_only].copy(), "atac": ad_atac[~rna_only].copy(),
                           "Batch": pd.Series(meta["Batch"].astype(str).to_numpy(), index=cells)})
    frame = frame.loc[list(cells)]
    vae = JointVAE({"rna": {"likelihood": "nb", "n_features": 0}, "atac": {"likelihood": "bernoulli", "n_features": 0}},
                   batch_key="Batch", epochs=args.epochs, batch_size=128, seed=seed)
    vae.fit(frame)
    z = vae.embed(frame).to_numpy()
    to_atac = vae.translate(frame[rna_only], "atac", ["rna"]).to_numpy()
    to_rna = vae.translate(frame[atac_only], "rna", ["atac"]).to_numpy()
    return z, to_atac, to_rna


def run_multivi(rna, atac, meta, genes, peaks, rna_only, atac_only, args, seed):
    """MultiVI on a MuData (scvi-tools 1.4 takes MuData only); the hidden modality of an unpaired cell is all zeros,
    which is how MultiVI marks a missing modality (a cell with zero library in it)."""
    import anndata
    import mudata
    import scvi
    from scipy import sparse

    scvi.settings.seed = seed
    with pd.option_context("future.infer_string", False):
        cells = pd.Index([str(c) for c in meta.index], dtype=object)
        obs = pd.DataFrame({"Batch": meta["Batch"].astype(str).to_numpy()}, index=cells)
        keep_rna = sparse.diags((~atac_only).astype(np.float32)) @ rna
        keep_atac = sparse.diags((~rna_only).astype(np.float32)) @ atac
        mdata = mudata.MuData({
            "rna": anndata.AnnData(sparse.csr_matrix(keep_rna), obs=obs.copy(), var=pd.DataFrame(index=pd.Index(genes, dtype=object))),
            "atac": anndata.AnnData(sparse.csr_matrix(keep_atac), obs=obs.copy(), var=pd.DataFrame(index=pd.Index(peaks, dtype=object))),
        })
    scvi.model.MULTIVI.setup_mudata(mdata, batch_key="Batch", modalities={"rna_layer": "rna", "atac_layer": "atac", "batch_key": "rna"})
    model = scvi.model.MULTIVI(mdata, n_genes=rna.shape[1], n_regions=atac.shape[1])
    extra = {"lr": args.multivi_lr} if args.multivi_lr else {}
    model.train(max_epochs=args.epochs, accelerator="cpu", enable_progress_bar=False, **extra)
    z = model.get_latent_representation()
    to_atac = np.asarray(model.get_normalized_accessibility(indices=np.flatnonzero(rna_only), return_numpy=True))
    to_rna = np.asarray(model.get_normalized_expression(indices=np.flatnonzero(atac_only), return_numpy=True))
    return z, to_atac, to_rna, scvi.__version__


def main() -> None:
    args = parse_args(__doc__, "singlecell_snareseq", extra=extra)
    if args.quick:
        args.cells, args.peaks, args.epochs = 800, 1000, 3
    from sklearn.decomposition import PCA

    from modalfuse.evaluate.translation import per_feature_auroc, per_feature_pearson, pooled_auroc, summary

    load0, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[str, list] = {}
    for seed in range(args.seeds):
        rna, atac, meta, genes, peaks = load(args.data_dir, args.cells, args.peaks, seed)
        rng = np.random.default_rng(seed)
        role = rng.random(len(meta))
        rna_only, atac_only = role < 0.1, (role >= 0.1) & (role < 0.2)
        methods = {"PCA (50) of log-normalised RNA (reference: every cell's RNA)": None, "modalfuse JointVAE": run_ours}
        try:
            import scvi  # noqa: F401

            methods["scvi-tools MultiVI"] = run_multivi
        except ImportError as err:
            results.setdefault("scvi-tools MultiVI", []).append(f"not run: {err}")
        if args.only:
            methods = {k: v for k, v in methods.items() if any(o.strip() in k for o in args.only.split(","))}
        for label, fn in methods.items():
            with Meter() as m:
                if fn is None:
                    z, to_atac, to_rna = PCA(50, random_state=seed).fit_transform(lognorm(rna)), None, None
                else:
                    res = fn(rna, atac, meta, genes, peaks, rna_only, atac_only, args, seed)
                    z, to_atac, to_rna = res[:3]
                    if len(res) > 3:
                        label = f"scvi-tools {res[3]} MultiVI" + (f" (lr {args.multivi_lr:g})" if args.multivi_lr else " (its lr, 1e-4)")
            row = {**knn_scores(z, meta, seed), "seconds": m.seconds, "peak": m.peak_mib}
            if to_atac is not None:
                truth = atac[rna_only].toarray()
                row["RNA→ATAC AUROC per peak"] = summary(per_feature_auroc(to_atac, truth))["mean"]
                row["RNA→ATAC AUROC pooled"] = pooled_auroc(to_atac, truth)
                r = per_feature_pearson(np.log1p(to_rna / np.maximum(to_rna.sum(axis=1, keepdims=True), 1e-12) * 1e4), lognorm(rna[atac_only]))
                row["ATAC→RNA Pearson per gene"] = summary(r)["mean"]
            results.setdefault(label, []).append(row)
        print(f"seed {seed} done", file=sys.stderr)
    n = len(meta)
    lines = header("SNARE-seq mouse cortex: joint RNA + ATAC embedding with unpaired cells", args.threads, load0, started,
                   f"0..{args.seeds - 1}", [
                       f"data: multiome_snareseq_mop_scmomat, subsampled per seed to {n} cells (of 10,309; `--cells`), 1,677 genes, "
                       f"the {args.peaks} most often detected of 25,734 peaks (`--peaks`), 12 libraries as the batch covariate",
                       "per seed: 10 % of cells keep RNA only (their ATAC is hidden from training: RNA → ATAC is scored on them), "
                       "10 % keep ATAC only (ATAC → RNA), 80 % paired; both methods see exactly these cells",
                       f"training: {args.epochs} epochs each (MultiVI's default is 500 with early stopping; shortened for the machine; "
                       f"JointVAE lr 2e-3, MultiVI lr {args.multivi_lr or '1e-4 (its default)'}), "
                       "batch 128 for both; default architectures otherwise (JointVAE: latent 20, hidden 256; MultiVI: its defaults)",
                       "kNN: k = 15 label transfer between two random halves of the cells (both directions averaged), broad = 15 "
                       "`cluster (remapped)` types, fine = 23 `Ident` types",
                       "batch entropy: mean over cells of the Shannon entropy of the library labels among the 30 nearest neighbours "
                       "divided by log(12): 1 = fully mixed libraries, 0 = one library per neighbourhood (libraries differ in "
                       "composition, so 1 is not the ideal; read it beside the kNN accuracies)",
                       "RNA → ATAC: AUROC of predicted accessibility vs detected (count > 0), per peak (mean over peaks with ≥ 5 "
                       "positives and negatives) and pooled; ATAC → RNA: per-gene Pearson of log1p(predicted per 10,000) vs "
                       "log1p(observed per 10,000), mean over genes",
                       "wall s / peak MiB: the whole method in this process (fit + embed + predict; resident memory above the start)",
                   ])
    keys = ["kNN broad", "kNN fine", "batch entropy", "RNA→ATAC AUROC per peak", "RNA→ATAC AUROC pooled", "ATAC→RNA Pearson per gene", "seconds", "peak"]
    shown = {"seconds": "wall s", "peak": "peak MiB"}
    lines += ["| method | " + " | ".join(shown.get(k, k) for k in keys) + " |",
              "|---|" + "---|" * len(keys)]
    for label, rows in results.items():
        if isinstance(rows[0], str):
            lines.append(f"| {label} | {rows[0]} |" + " |" * (len(keys) - 1))
            continue
        cells = [mean_std([r[k] for r in rows], digits=0 if k == "peak" else (1 if k == "seconds" else 3)) if k in rows[0] else "–" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
