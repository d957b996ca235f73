"""Single-cell inputs, the counts kind, the joint VAE, translation scores and spatial mapping, on small slices of the
real files in ../shared/data (TEA-seq, muon multiome, Visium lymph node) and tiny AnnData/MuData written to tmp."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

anndata = pytest.importorskip("anndata")
mudata = pytest.importorskip("mudata")
from scipy import io, sparse  # noqa: E402

from modalfuse.api import MultimodalModel  # noqa: E402
from modalfuse.data.singlecell import read_10x_h5, read_cells, read_mtx  # noqa: E402
from modalfuse.kinds.sparse import SparseRows  # noqa: E402
from modalfuse.errors import DataError  # noqa: E402
from modalfuse.evaluate.translation import per_feature_auroc, per_feature_pearson, summary  # noqa: E402
from modalfuse.singlecell import JointVAE, map_cell_types  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRAIN = {"max_epochs": 12, "batch_size": 64, "progress": False, "seed": 0}


def _adata(n_cells=60, n_genes=40, seed=0, prefix="c", genes=None):
    """Two groups of cells; genes 0-9 high in group A, 10-19 in group B, the rest flat: a Poisson count matrix."""
    rng = np.random.default_rng(seed)
    group = np.array(["A", "B"])[rng.integers(0, 2, n_cells)]
    rate = np.tile(np.linspace(0.5, 12, n_genes), (n_cells, 1))  # flat genes at many depths
    rate[group == "A", :10] = 14.0
    rate[group == "B", 10:20] = 14.0
    X = sparse.csr_matrix(rng.poisson(rate).astype(np.float32))
    # object indexes: anndata 0.12 cannot write pandas 3's default Arrow string arrays to .h5ad/.h5mu
    obs = pd.DataFrame({"group": group}, index=pd.Index([f"{prefix}{i}" for i in range(n_cells)], dtype=object))
    var = pd.DataFrame(index=pd.Index(genes or [f"g{i}" for i in range(n_genes)], dtype=object))
    return anndata.AnnData(X=X, obs=obs, var=var)


# ----------------------------------------------------------------------------------------------- readers
def test_reads_h5ad_h5mu_and_10x_h5_from_the_shared_data(shared_data):
    frame, summary_ = read_cells(shared_data / "singlecell_muon_multiome_subset" / "test_rna_atac.h5mu")
    assert {"rna", "atac"} <= set(frame.columns) and summary_["cells"] == 1000 and summary_["in_every_modality"] == 1000
    cell = frame["rna"].iloc[0]
    assert cell.features.n == 45 and cell.values.dtype == np.float32
    frame, _ = read_cells(shared_data / "singlecell_muon_multiome_subset" / "test_rna.h5ad")
    assert list(frame.columns[:1]) == ["X"] and len(frame) == 1000
    mods = read_10x_h5(shared_data / "citeseq_teaseq_matilda" / "train_adt.h5")
    assert mods["X"].matrix.shape == (1262, 46) and len(mods["X"].features) == 46


def test_cells_matched_by_name_and_absent_cells_are_missing(tmp_path):
    path = tmp_path / "x.h5mu"
    with pd.option_context("future.infer_string", False):  # anndata 0.12 cannot write pandas 3's Arrow strings
        rna = _adata(30, prefix="c")
        prot = _adata(40, n_genes=8, seed=1, prefix="c")  # cells c30..c39 have protein only
        prot = prot[list(reversed(prot.obs_names))].copy()  # another order: matched by name, not position
        mudata.MuData({"rna": rna, "prot": prot}).write(path)
    frame, s = read_cells(path)
    assert s["per_modality"] == {"rna": 30, "prot": 40} and s["only_in"] == {"rna": 0, "prot": 10}
    assert frame.loc["c35", "rna"] is None and frame.loc["c35", "prot"] is not None
    np.testing.assert_array_equal(frame.loc["c3", "rna"].dense(), rna.X[3].toarray().ravel())
    inner, s2 = read_cells({"rna": rna, "prot": prot}, join="inner")
    assert len(inner) == 30 and s2["dropped"] == 10


def test_matrix_market_folder_sparse_mapping_and_duplicate_ids(tmp_path):
    ad = _adata(12)
    folder = tmp_path / "filtered"
    folder.mkdir()
    io.mmwrite(str(folder / "matrix.mtx"), sparse.csr_matrix(ad.X).T.tocoo())
    (folder / "features.tsv").write_text("".join(f"ENSG{i}\t{g}\tGene Expression\n" for i, g in enumerate(ad.var_names)))
    (folder / "barcodes.tsv").write_text("".join(f"{c}\n" for c in ad.obs_names))
    frame, _ = read_cells({"rna": folder, "label": pd.Series(ad.obs["group"])})
    assert frame["rna"].iloc[0].features.names[:2] == ("g0", "g1") and frame["label"].tolist() == ad.obs["group"].tolist()
    # a mapping of scipy sparse matrices (previously "sparse array length is ambiguous")
    frame, _ = read_cells({"a": sparse.random(5, 7, density=0.5, format="csr"), "y": [0, 1, 0, 1, 0]})
    assert len(frame) == 5 and frame["a"].iloc[0].features.n == 7
    dup = ad.copy()
    dup.obs_names = ["same"] * dup.n_obs
    with pytest.raises(DataError, match="appears more than once"):
        read_cells({"rna": dup})


# ----------------------------------------------------------------------------------------------- counts kind
def _counts_model(**options):
    return MultimodalModel([{"name": "rna", "kind": "counts", "options": {"n_features": 20, **options}}], "group", train=TRAIN)


def test_counts_kind_keeps_sparse_rows_selects_variable_genes_and_matches_genes_by_name():
    ad = _adata(80)
    model = _counts_model()
    model.fit({"rna": ad})
    pre = model.preprocessors["rna"]
    assert set(pre.selected_names) == {f"g{i}" for i in range(20)}  # the 20 genes that differ between the groups
    feats = model._features({"rna": ad}, "x")
    assert isinstance(feats.inputs["rna"], SparseRows) and feats[[0, 1]].inputs["rna"].shape == (2, 20)
    shuffled = ad[:, list(reversed(ad.var_names))].copy()  # same genes, other order
    np.testing.assert_allclose(model.predict_proba({"rna": shuffled}), model.predict_proba({"rna": ad}), rtol=1e-5)
    assert (model.predict({"rna": ad}) == ad.obs["group"].to_numpy()).mean() > 0.9
    lacking = ad[:, [g for g in ad.var_names if g != "g3"]].copy()
    with pytest.raises(DataError, match="gene list mismatch: 1 of the 20 features .* absent .*g3"):
        model.predict({"rna": lacking})


def test_counts_errors_non_integer_and_empty_cells():
    ad = _adata(40)
    bad = ad.copy()
    bad.X = bad.X.astype(np.float32) * 0.5 + sparse.csr_matrix(np.full(bad.shape, 0.25, np.float32))
    with pytest.raises(DataError, match="non-integer count"):
        _counts_model().fit({"rna": bad})
    empty = ad.copy()
    X = empty.X.toarray()
    X[[3, 7]] = 0
    empty.X = sparse.csr_matrix(X)
    model = MultimodalModel([{"name": "rna", "kind": "counts", "options": {"n_features": 20}}], "group", train=TRAIN, on_error="skip")
    model.fit({"rna": empty}, val={"rna": empty})
    report = model.reports["train"]
    assert len(report.skipped) == 2 and "empty cell" in report.skipped[0].reason and report.rows_used == 38
    with pytest.raises(DataError, match="empty cell"):
        _counts_model().fit({"rna": empty})


def test_tfidf_lsi_and_batch_covariate():
    ad = _adata(60)
    ad.obs["lib"] = np.where(np.arange(60) % 2, "L1", "L2")
    model = MultimodalModel([{"name": "atac", "kind": "counts", "columns": ["atac"],
                              "options": {"transform": "tfidf", "lsi_components": 5, "n_features": 0, "batch": "lib"}}], "group", train=TRAIN)
    model.fit({"atac": ad})
    pre = model.preprocessors["atac"]
    assert pre.dim == 5 + 2 and pre.batches == ["L1", "L2"]
    x = model._features({"atac": ad}, "x").inputs["atac"].dense().numpy()
    assert np.allclose(x[:, 5:].sum(axis=1), 1) and np.abs(x[:, :5]).sum() > 0


def test_teaseq_fused_model_classifies_protein_only_cells(shared_data):
    d = shared_data / "citeseq_teaseq_matilda"
    frame, _ = read_cells({"rna": d / "train_rna.h5", "adt": d / "train_adt.h5"})
    frame["celltype"] = pd.read_csv(d / "train_cty.csv")["x"].to_numpy()
    test, _ = read_cells({"adt": d / "test_adt.h5"})
    test["celltype"] = pd.read_csv(d / "test_cty.csv")["x"].to_numpy()
    test["rna"] = None  # the 5,048 cells have no RNA
    test = test.iloc[:400]
    model = MultimodalModel([{"name": "rna", "kind": "counts", "options": {"n_features": 300}},
                             {"name": "adt", "kind": "counts", "options": {"n_features": 0}}], "celltype",
                            train={**TRAIN, "max_epochs": 15, "modality_dropout": 0.3})
    model.fit(frame.iloc[:600])
    pred = model.predict(test)
    majority = test["celltype"].value_counts(normalize=True).iloc[0]
    assert model.reports["predict"].missing["rna"] == 400 and model.reports["predict"].rows_used == 400
    assert (pred == test["celltype"].to_numpy()).mean() > majority + 0.2


# ----------------------------------------------------------------------------------------------- joint VAE
def test_joint_vae_embeds_with_a_missing_modality_translates_and_round_trips(shared_data, tmp_path):
    d = shared_data / "citeseq_teaseq_matilda"
    frame, _ = read_cells({"rna": d / "train_rna.h5", "adt": d / "train_adt.h5"})
    train, test = frame.iloc[:500], frame.iloc[500:700].copy()
    model = JointVAE({"rna": {"likelihood": "nb", "n_features": 300}, "adt": "nbmix"}, latent=8, hidden=64, epochs=25, batch_size=64, seed=0)
    model.fit(train)
    assert model.history["loss"][-1] < model.history["loss"][0]
    pred = model.translate(test, "adt", ["rna"])
    obs, _ = model.observed(test, "adt")
    r = summary(per_feature_pearson(np.log1p(pred.to_numpy()), np.log1p(obs.to_numpy())))
    assert r["n"] == 46 and r["median"] > 0.25
    test["rna"] = [None] * 100 + list(test["rna"].iloc[100:])  # 100 cells lose RNA
    z = model.embed(test)
    assert np.isfinite(z.to_numpy()).all() and z.shape == (200, 8)
    rna_only = model.embed(test, use=["rna"])
    assert rna_only.iloc[:100].isna().all().all() and np.isfinite(rna_only.iloc[100:].to_numpy()).all()
    model.save(tmp_path / "vae")
    again = JointVAE.load(tmp_path / "vae")
    np.testing.assert_allclose(again.embed(test).to_numpy(), z.to_numpy(), rtol=1e-5, atol=1e-6)


def test_joint_vae_bernoulli_peaks_with_batches():
    rng = np.random.default_rng(0)
    rna = _adata(120, seed=2)
    group = rna.obs["group"].to_numpy()
    p = np.full((120, 30), 0.05)
    p[group == "A", :10] = 0.6
    p[group == "B", 10:20] = 0.6
    atac = anndata.AnnData(X=sparse.csr_matrix((rng.random((120, 30)) < p).astype(np.float32)), obs=rna.obs[[]].copy(),
                           var=pd.DataFrame(index=[f"peak{i}" for i in range(30)]))
    frame, _ = read_cells({"rna": rna, "atac": atac, "lib": pd.Series(np.where(np.arange(120) % 3, "b1", "b2"), index=rna.obs_names)})
    model = JointVAE({"rna": {"likelihood": "nb", "n_features": 0}, "atac": {"likelihood": "bernoulli", "n_features": 0}},
                     batch_key="lib", latent=4, hidden=32, epochs=30, batch_size=32, seed=1)
    model.fit(frame)
    prob = model.translate(frame, "atac", ["rna"]).to_numpy()
    obs, _ = model.observed(frame, "atac")
    auc = summary(per_feature_auroc(prob[:, :20], obs.to_numpy()[:, :20]))
    assert auc["mean"] > 0.75 and model.batches == ["b1", "b2"]
    with pytest.raises(DataError, match="not seen in training"):
        frame2 = frame.copy()
        frame2["lib"] = "b9"
        model.embed(frame2)


def test_translation_scores():
    true = np.array([[0, 1.0], [1, 2], [2, 3], [3, 5]])
    assert np.allclose(per_feature_pearson(true * 2 + 1, true), 1)
    assert np.isnan(per_feature_pearson(np.ones((4, 2)), true)).all()
    y = np.array([[0], [0], [1], [1], [0], [1], [0], [1], [0], [1], [1], [0]])
    assert per_feature_auroc(y.astype(float), y)[0] == 1.0 and per_feature_auroc(1 - y.astype(float), y)[0] == 0.0


# ----------------------------------------------------------------------------------------------- spatial
def test_spatial_map_recovers_known_mixtures_and_runs_on_the_lymph_node(shared_data, tmp_path):
    rng = np.random.default_rng(0)
    n_types, genes = 4, [f"g{i}" for i in range(60)]
    profiles = rng.gamma(0.5, 1.0, (n_types, 60))
    profiles /= profiles.sum(axis=1, keepdims=True)
    labels = np.repeat([f"t{k}" for k in range(n_types)], 25)
    ref = rng.poisson(2000 * profiles[np.repeat(np.arange(n_types), 25)])
    truth = rng.dirichlet(np.full(n_types, 0.5), 150)
    spots = rng.poisson(3000 * truth @ profiles)
    ref_ad = anndata.AnnData(X=sparse.csr_matrix(ref.astype(np.float32)), var=pd.DataFrame(index=genes),
                             obs=pd.DataFrame({"type": labels}, index=[f"r{i}" for i in range(100)]))
    spot_ad = anndata.AnnData(X=sparse.csr_matrix(spots.astype(np.float32)), var=pd.DataFrame(index=genes[::-1]).iloc[::-1],
                              obs=pd.DataFrame(index=[f"s{i}" for i in range(150)]))
    result = map_cell_types(spot_ad, ref_ad, "type")
    w = result.weights[[f"t{k}" for k in range(n_types)]].to_numpy()
    assert np.allclose(w.sum(axis=1), 1) and np.corrcoef(w.ravel(), truth.ravel())[0, 1] > 0.95
    with pytest.raises(DataError, match="share only"):
        other = spot_ad.copy()
        other.var_names = [f"x{i}" for i in range(60)]
        map_cell_types(other, ref_ad, "type")

    d = shared_data / "spatial_visium_lymphnode_spacexr"
    sp = read_mtx(d / "spatial_counts_genes_x_spots.mtx.gz", d / "spatial_genes.txt", d / "spatial_coords.csv")
    keep = np.arange(0, 1000, 5)
    sp.matrix, sp.cells = sp.matrix[keep], [sp.cells[i] for i in keep]
    rf = read_mtx(d / "ref_counts_genes_x_cells.mtx.gz", d / "ref_genes.txt", d / "ref_cells.csv")
    cells = pd.read_csv(d / "ref_cells.csv")
    lymph = map_cell_types({"X": sp}, {"X": rf, "cell_type": cells["cell_type"].tolist()}, "cell_type",
                           coords=pd.read_csv(d / "spatial_coords.csv", index_col=0), iterations=100)
    assert lymph.weights.shape == (200, 11) and len(lymph.genes) > 400
    agreement = lymph.marker_agreement()
    assert (agreement["pearson_r"] > 0).mean() > 0.8
    assert lymph.plot(tmp_path / "map.png").stat().st_size > 10_000
    assert list(lymph.table().columns[:2]) == ["x", "y"]


# ----------------------------------------------------------------------------------------------- CLI
def test_cli_trains_and_predicts_from_h5mu(tmp_path, capsys):
    import yaml

    from modalfuse.cli import main

    with pd.option_context("future.infer_string", False):
        rna = _adata(80, prefix="c")
        prot = _adata(80, n_genes=8, seed=1, prefix="c")
        prot.obs = prot.obs[[]]
        mudata.MuData({"rna": rna, "prot": prot[:60].copy()}).write(tmp_path / "cells.h5mu")  # c60..c79: RNA only
    cfg = {"data": {"train": "cells.h5mu", "target": "rna:group"},
           "modalities": [{"name": "rna", "kind": "counts", "options": {"n_features": 20}},
                          {"name": "prot", "kind": "counts", "options": {"n_features": 0}}],
           "train": {**TRAIN, "max_epochs": 5}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "cfg.yaml"), "--run-dir", str(tmp_path / "runs")]) == 0
    run = next((tmp_path / "runs").iterdir())
    assert main(["predict", str(run / "model"), str(tmp_path / "cells.h5mu"), "-o", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == 80 and pred["row"].iloc[0] == "c0" and not pred["present_prot"].iloc[70]


def test_translation_auxiliary_loss_trains_a_head_that_predicts_the_target():
    """train.translation: the RNA embedding learns to predict the protein modality's encoded values."""
    import torch

    from modalfuse.train import module as module_mod

    ad = _adata(160, seed=3)
    group = ad.obs["group"].to_numpy()
    rng = np.random.default_rng(4)
    prot_rate = np.where(group[:, None] == "A", [30.0, 2.0, 10.0], [2.0, 30.0, 10.0])
    prot = anndata.AnnData(X=sparse.csr_matrix(rng.poisson(prot_rate).astype(np.float32)), obs=ad.obs[[]].copy(),
                           var=pd.DataFrame(index=["p1", "p2", "p3"]))
    frame, _ = read_cells({"rna": ad, "adt": prot, "group": ad.obs["group"]})
    seen = {}
    original = module_mod._translators

    def keep(net, cfg):
        seen["heads"] = original(net, cfg)
        return seen["heads"]

    module_mod._translators = keep
    try:
        model = MultimodalModel([{"name": "rna", "kind": "counts", "options": {"n_features": 20}},
                                 {"name": "adt", "kind": "counts", "options": {"n_features": 0}}], "group",
                                train={**TRAIN, "max_epochs": 25, "patience": 0, "translation": {"target": "adt", "sources": ["rna"]}})
        model.fit(frame)
    finally:
        module_mod._translators = original
    feats = model._features(frame, "x")
    with torch.no_grad():
        emb = model.net.encoders["rna"].eval()(feats.inputs["rna"].dense())
        pred = seen["heads"]["rna"].eval()(emb).numpy()
    r = per_feature_pearson(pred, feats.inputs["adt"].dense().numpy())
    assert r[0] > 0.5 and r[1] > 0.5  # the two proteins that follow the groups (an untrained head gives ~0)
    from modalfuse.errors import ConfigError

    with pytest.raises(ConfigError, match="translation.target"):
        MultimodalModel([{"name": "rna", "kind": "counts"}], "group", train={**TRAIN, "translation": {"target": "nope"}}).fit(frame)


def test_counts_request_cells_accept_gene_mappings_and_lists():
    from modalfuse.errors import RequestError

    ad = _adata(40)
    model = _counts_model()
    model.fit({"rna": ad})
    pre = model.preprocessors["rna"]
    row = ad.X[5].toarray().ravel()
    by_name = pre.request_cells({g: float(v) for g, v in zip(ad.var_names, row) if v}, "rna")
    by_list = pre.request_cells(row.tolist(), "rna")
    a = pre.encode(pre.decode(by_name, None)).toarray()
    b = pre.encode(pre.decode(by_list, None)).toarray()
    np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(RequestError, match="unknown features"):
        pre.request_cells({"NOPE": 1}, "rna")
    assert pre.schema()["features"] == 40


def test_serving_engine_predicts_counts_records():
    from modalfuse.serve.engine import Engine

    ad = _adata(60)
    model = _counts_model()
    model.fit({"rna": ad})
    engine = Engine(model)
    records = [{"rna": {g: float(v) for g, v in zip(ad.var_names, ad.X[i].toarray().ravel()) if v}} for i in range(4)]
    out = engine.predict(engine.encode_records(records))
    assert [r["prediction"] for r in out] == list(model.predict({"rna": ad[:4].copy()}))
