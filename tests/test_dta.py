"""Drug–target affinity: molecular graphs, de-duplicated entities, concordance index, the Davis loader."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("rdkit")
pytest.importorskip("torch_geometric")

from modalfuse.api import MultimodalModel  # noqa: E402
from modalfuse.config import FusionConfig, ModalityConfig, ModelConfig, SequenceOptions, TrainConfig  # noqa: E402
from modalfuse.data import featurize, make_preprocessor  # noqa: E402
from modalfuse.data.entities import GraphSet, Indexed  # noqa: E402
from modalfuse.kinds.graph import NODE_FEATURES, smiles_to_graph  # noqa: E402
from modalfuse.data.target import TargetEncoder  # noqa: E402
from modalfuse.errors import DataError  # noqa: E402
from modalfuse.evaluate.metrics import concordance_index, regression_metrics  # noqa: E402
from modalfuse.model import MultimodalNet  # noqa: E402

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


@pytest.mark.parametrize(
    "smiles, atoms, bonds, aromatic",
    [("CCO", 3, 2, 0), ("c1ccccc1", 6, 6, 6), (ASPIRIN, 13, 13, 6), ("C[N+](C)(C)C.[Cl-]", 6, 4, 0)],
)
def test_known_molecules(smiles: str, atoms: int, bonds: int, aromatic: int) -> None:
    graph = smiles_to_graph(smiles)
    assert graph["x"].shape == (atoms, NODE_FEATURES)
    assert graph["edge_index"].shape == (2, 2 * bonds)
    assert np.allclose(graph["x"].sum(axis=1), 1.0)
    assert int((graph["x"][:, -1] > 0).sum()) == aromatic
    edges = set(map(tuple, graph["edge_index"].T))
    assert all((j, i) in edges for i, j in edges), "bonds are stored in both directions"


def test_element_one_hot_names_the_atom() -> None:
    raw = smiles_to_graph("CCO", normalize=False)["x"]
    assert raw[:, 0].tolist() == [1, 1, 0] and raw[:, 2].tolist() == [0, 0, 1]  # C, C, O
    assert raw.sum(axis=1).tolist() == [4, 4, 4]  # element, degree, hydrogens and valence one-hots; not aromatic


def _pairs() -> pd.DataFrame:
    drugs = ["CCO", "c1ccccc1O", ASPIRIN, "C1CCNCC1"]
    proteins = ["MKTAYIAKQR", "MSTNPKPQRK", "MADEEKLPPG"]
    rng = np.random.default_rng(0)
    rows = [(d, p, float(rng.normal(6, 1))) for d in drugs for p in proteins for _ in range(2)]
    return pd.DataFrame(rows, columns=["smiles", "sequence", "affinity"])


def _modalities(dedupe: bool | None = None) -> list[ModalityConfig]:
    return [
        ModalityConfig(name="drug", kind="graph", columns=["smiles"], encoder={"dim": 8, "options": {"hidden": 8, "layers": 2}}),
        ModalityConfig(
            name="protein", kind="sequence", columns=["sequence"], options=SequenceOptions(max_len=12), dedupe=dedupe,
            encoder={"dim": 8, "options": {"embed_dim": 8, "filters": [8], "kernel_size": 3, "dropout": 0.0}},
        ),
    ]


def _features(frame: pd.DataFrame, modalities: list[ModalityConfig], **kw):
    pres = {m.name: make_preprocessor(m) for m in modalities}
    target = TargetEncoder("regression")
    return featurize(frame, pres, target, "affinity", fit=True, **kw), pres


def test_each_distinct_value_is_stored_once() -> None:
    frame = _pairs()
    feats, _ = _features(frame, _modalities())
    drug, protein = feats.inputs["drug"], feats.inputs["protein"]
    assert isinstance(drug, Indexed) and isinstance(drug.values, GraphSet) and len(drug.values) == 4
    assert isinstance(protein, Indexed) and protein.values.shape == (3, 12)
    assert len(drug) == len(protein) == len(frame) == 24
    batch = feats[[0, 1, 6]]  # two proteins of drug 0 ... and drug 1
    assert len(batch.inputs["drug"].values) == 2 and batch.inputs["drug"].index.tolist() == [0, 0, 1]


def test_invalid_smiles_named_or_skipped() -> None:
    frame = _pairs()
    frame.loc[5, "smiles"] = "C1CC(("
    with pytest.raises(DataError) as err:
        _features(frame, _modalities(), table="pairs.csv")
    text = str(err.value)
    assert "C1CC((" in text and "5" in text and "smiles" in text and "pairs.csv" in text
    feats, _ = _features(frame, _modalities(), on_error="skip")
    assert feats.report.rows_read == 24 and feats.report.rows_used == 23 and len(feats.report.skipped) == 1
    assert feats.report.skipped[0].row == 5


def _loss_and_grads(net: MultimodalNet, batch) -> tuple[float, dict[str, torch.Tensor]]:
    net.zero_grad()
    out = net(batch).output
    loss = torch.nn.functional.mse_loss(out[:, 0], batch.target)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("modality", ["protein", "drug"])
def test_deduplicated_batch_gives_the_same_loss_and_gradients(modality: str) -> None:
    """Encoding each distinct entity once and gathering equals encoding every row (eval mode: no dropout noise)."""
    frame = _pairs()
    mods = _modalities()
    feats, pres = _features(frame, mods)
    rows = list(range(0, 24, 2)) + [1, 3]
    batch = feats[rows]
    plain = feats[rows]
    x = plain.inputs[modality]
    plain.inputs[modality] = Indexed(x.values[x.index], torch.arange(len(x)))  # one copy per row
    assert len(plain.inputs[modality].values) == len(rows) > len(batch.inputs[modality].values)
    info = {n: p.encoder_info() for n, p in pres.items()}
    torch.manual_seed(0)
    net = MultimodalNet.build(mods, ModelConfig(fusion=FusionConfig(dim=8), head_hidden=8, dropout=0.0), info, "regression", 1).eval()
    loss_a, grads_a = _loss_and_grads(net, batch)
    loss_b, grads_b = _loss_and_grads(net, plain)
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-6, rtol=1e-4), name


def test_dedupe_switch_gives_dense_tensors_when_off() -> None:
    feats, _ = _features(_pairs(), _modalities(dedupe=False))
    assert isinstance(feats.inputs["protein"], torch.Tensor) and feats.inputs["protein"].shape == (24, 12)
    feats, _ = _features(_pairs(), _modalities(dedupe=None))  # auto: 24 rows, 3 distinct → stored once
    assert isinstance(feats.inputs["protein"], Indexed)


def test_graph_set_selects_and_renumbers() -> None:
    graphs = [smiles_to_graph(s) for s in ("CCO", ASPIRIN, "c1ccccc1")]
    gs = GraphSet.from_arrays(graphs, NODE_FEATURES)
    sub = gs[torch.tensor([2, 0])]
    assert len(sub) == 2 and sub.node_ptr.tolist() == [0, 6, 9]
    assert torch.equal(sub.x[:6], torch.from_numpy(graphs[2]["x"]))
    assert torch.equal(sub.edge_index[:, 12:], torch.from_numpy(graphs[0]["edge_index"]) + 6)
    assert sub.node_graph().tolist() == [0] * 6 + [1] * 3


def _ci_quadratic(y: np.ndarray, p: np.ndarray) -> float:
    """The O(n²) definition (DeepDTA's get_cindex)."""
    num = den = 0.0
    for i in range(len(y)):
        for j in range(len(y)):
            if y[i] > y[j]:
                den += 1
                num += 1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0
    return num / den


@pytest.mark.parametrize("seed", range(6))
def test_concordance_index_matches_the_quadratic_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 120))
    y = rng.integers(0, 6, n).astype(float) if seed % 2 else rng.normal(size=n)
    p = rng.integers(0, 4, n).astype(float) if seed % 3 == 0 else y + rng.normal(size=n)
    if len(np.unique(y)) < 2:
        y[0] += 1
    assert concordance_index(y, p) == pytest.approx(_ci_quadratic(y, p))


def test_regression_metrics_include_dta_figures() -> None:
    y = np.array([5.0, 5.0, 6.0, 7.5, 8.0])
    perfect = regression_metrics(y, y)
    assert perfect["ci"] == 1.0 and perfect["pearson"] == pytest.approx(1.0) and perfect["rm2"] == pytest.approx(1.0)
    reverse = regression_metrics(y, -y)
    assert reverse["ci"] == 0.0 and reverse["spearman"] == pytest.approx(-1.0)


def test_pairs_train_save_load_predict(tmp_path) -> None:
    frame = _pairs()
    model = MultimodalModel(
        _modalities(), target="affinity", task="regression", model=ModelConfig(fusion=FusionConfig(dim=8), head_hidden=8),
        train=TrainConfig(max_epochs=3, batch_size=8, progress=False, warmup_epochs=1),
    ).fit(frame, val=frame)
    first = model.predict(frame)
    assert first.shape == (24,) and np.isfinite(first).all()
    metrics = model.evaluate(frame)
    assert {"mse", "ci", "pearson", "spearman", "rm2"} <= set(metrics)
    model.save(tmp_path / "dta")
    again = MultimodalModel.load(tmp_path / "dta").predict(frame)
    assert np.allclose(first, again, atol=1e-5)


def test_davis_loader_counts(shared_data) -> None:
    from modalfuse.datasets import load_dataset

    davis = load_dataset("davis", shared_data)
    assert len(davis.train) == 25046 and len(davis.test) == 5010
    assert davis.train["fold"].value_counts().sort_index().tolist() == [5010, 5009, 5009, 5009, 5009]
    both = pd.concat([davis.train, davis.test])
    assert both["drug"].nunique() == 68 and both["protein"].nunique() == 442
    assert both["affinity"].min() == pytest.approx(5.0) and (both["affinity"] == 5.0).mean() > 0.6
    assert [m.kind for m in davis.modalities] == ["graph", "sequence"]


def test_serving_refuses_graph_models_clearly(tmp_path) -> None:
    from modalfuse.errors import ConfigError
    from modalfuse.serve.engine import Engine

    model = MultimodalModel(
        _modalities(), target="affinity", task="regression", model=ModelConfig(fusion=FusionConfig(dim=8), head_hidden=8),
        train=TrainConfig(max_epochs=1, batch_size=8, progress=False),
    ).fit(_pairs())
    with pytest.raises(ConfigError, match="graphs.*Python API"):
        Engine(model)


def test_expanded_features_equal_the_plain_layout() -> None:
    deduped, _ = _features(_pairs(), _modalities(dedupe=True))
    plain, _ = _features(_pairs(), _modalities(dedupe=False))
    assert torch.equal(deduped.expanded().inputs["protein"], plain.inputs["protein"])
    assert isinstance(deduped.expanded().inputs["drug"], Indexed)
    with pytest.raises(TypeError, match="graph"):
        deduped.inputs["drug"].dense()


def test_example_configs_validate_and_the_pairs_example_trains(tmp_path, capsys) -> None:
    """examples/*.yaml parse; the drug–target pairs example trains from the CLI and reports its bad SMILES row."""
    from pathlib import Path

    from modalfuse.cli import main
    from modalfuse.config import load_config

    examples = Path(__file__).resolve().parents[1] / "examples"
    for path in sorted(examples.glob("*.yaml")):
        load_config(path)
    assert main(["train", str(examples / "dta_pairs.yaml"), "--run-dir", str(tmp_path / "runs")]) == 0
    run = next((tmp_path / "runs").iterdir())
    skipped = [p for p in run.glob("*_skipped.csv")]
    assert skipped and "not_a_smiles" in skipped[0].read_text()
