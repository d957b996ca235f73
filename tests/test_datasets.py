"""Built-in datasets: loaders on the local copies of the public data, resolution, downloads and the demo."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from modalfuse.datasets import (
    DATASETS,
    DatasetInfo,
    DownloadError,
    LoadedDataset,
    RemoteFile,
    dataset_info,
    download,
    list_datasets,
    load_dataset,
    make_demo_data,
    resolve_root,
)
from modalfuse.datasets.base import fetch_file, read_manifest
from modalfuse.errors import ConfigError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def needs(folder: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (DATA / folder).is_dir(), reason=f"local copy of the public data not found at {DATA / folder}"
    )


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODALFUSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MODALFUSE_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> LoadedDataset:
    return make_demo_data(tmp_path_factory.mktemp("demo"), seed=0)


def test_registry_lists_all_datasets() -> None:
    assert {"handwritten", "spoken_digits", "womens_clothing", "demo"} <= set(list_datasets())
    assert "seed" in dataset_info("spoken_digits").options


def test_unknown_dataset_suggests_close_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'handwritten'"):
        load_dataset("handwriten")


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="no option"):
        load_dataset("handwritten", seed=1)


def test_missing_files_without_download_explain_how_to_fix() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_root("handwritten", download=False)
    message = str(err.value)
    assert "handwritten_6views.mat" in message and "--data-dir" in message and "MODALFUSE_DATA_DIR" in message


@needs("tmc_handwritten")
def test_handwritten_views_counts_and_labels() -> None:
    ds = load_dataset("handwritten", data_dir=DATA, download=False)
    widths = {"pixels": 240, "fourier": 76, "profile": 216, "zernike": 47, "kl": 64, "morph": 6}
    assert (len(ds.train), len(ds.test)) == (1600, 400)
    assert [m.name for m in ds.modalities] == list(widths) and {m.kind for m in ds.modalities} == {"vector"}
    for view, width in widths.items():
        cell = ds.train[view].iloc[0]
        assert cell.dtype == np.float32 and cell.shape == (width,)
    assert ds.target == "label" and ds.task == "classification"
    assert ds.train["label"].value_counts().to_dict() == {d: 160 for d in range(10)}
    assert ds.test["label"].value_counts().to_dict() == {d: 40 for d in range(10)}
    assert ds.root == DATA / "tmc_handwritten"


@needs("tmc_handwritten")
def test_env_var_may_point_at_the_dataset_folder_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODALFUSE_DATA_DIR", str(DATA / "tmc_handwritten"))
    assert resolve_root("handwritten", download=False) == DATA / "tmc_handwritten"


@needs("fsdd")
@needs("digits_images")
def test_spoken_digits_pairs_by_label_and_is_deterministic() -> None:
    ds = load_dataset("spoken_digits", data_dir=DATA, download=False)
    assert (len(ds.train), len(ds.test)) == (2700, 300)
    for frame, test in ((ds.train, False), (ds.test, True)):
        names = frame["audio"].map(lambda p: Path(p).stem.split("_"))
        assert (names.map(lambda n: int(n[0])) == frame["label"]).all()
        assert (names.map(lambda n: int(n[2]) < 5) == test).all()
        assert all(Path(p).is_absolute() for p in frame["audio"])
    assert Path(ds.train["audio"].iloc[0]).is_file()

    table = np.loadtxt(DATA / "digits_images/uci_optdigits/optdigits.tra", delimiter=",", comments="#", dtype=np.int64)
    label_of = {(row[:64] / 16.0).astype(np.float32).tobytes(): row[64] for row in table}
    image = ds.train["image"].iloc[123]
    assert image.shape == (8, 8) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    assert all(label_of[img.tobytes()] == label for img, label in zip(ds.train["image"], ds.train["label"]))

    again = load_dataset("spoken_digits", data_dir=DATA, download=False, seed=0)
    other = load_dataset("spoken_digits", data_dir=DATA, download=False, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(ds.test["image"], again.test["image"]))
    assert not all(np.array_equal(a, b) for a, b in zip(ds.test["image"], other.test["image"]))
    assert [m.kind for m in ds.modalities] == ["audio", "image"]


@needs("fsdd")
def test_fsdd_manifest_matches_the_published_checksums() -> None:
    sums = {
        line.split()[1].removeprefix("./fsdd/recordings/"): line.split()[0]
        for line in (DATA / "SHA256SUMS").read_text().splitlines()
        if "./fsdd/recordings/" in line
    }
    assert dict((name, digest) for digest, name in read_manifest("fsdd_recordings.sha256")) == sums


@needs("text_tabular_womens_clothing")
def test_womens_clothing_rows_columns_and_modalities() -> None:
    ds = load_dataset("womens_clothing", data_dir=DATA, download=False)
    assert (len(ds.train), len(ds.test)) == (2349, 2349)
    wanted = {"Title", "Review Text", "Rating", "Age", "Positive Feedback Count", "Division Name",
              "Department Name", "Class Name", "Recommended IND"}
    assert wanted <= set(ds.train.columns)
    assert set(ds.train["Recommended IND"]) == {0, 1} and ds.target == "Recommended IND"
    assert ds.train["Review Text"].notna().all()
    review, product = ds.modalities
    assert review.kind == "text" and review.columns == ["Title", "Review Text"]
    assert product.kind == "tabular" and product.options.handle_unknown == "ignore"
    assert product.options.categorical == ["Division Name", "Department Name", "Class Name"]


def test_demo_files_labels_and_corruption(demo: LoadedDataset) -> None:
    from sklearn.datasets import load_digits

    table = pd.read_csv(demo.root / "demo.csv")
    assert len(table) == 1797 and (table["label"].to_numpy() == load_digits().target).all()
    assert table["image"].iloc[0] == "images/00001.png" and table["audio"].iloc[0] == "audio/00001.wav"
    assert all((demo.root / p).is_file() for p in table["image"]) and all((demo.root / p).is_file() for p in table["audio"])
    assert (len(demo.train), len(demo.test)) == ((table["split"] == "train").sum(), (table["split"] == "test").sum())
    assert abs(len(demo.test) / 1797 - 0.25) < 0.01
    assert (table.groupby("label")["split"].apply(lambda s: (s == "test").mean()).sub(0.25).abs() < 0.02).all()
    counts = table["corrupted"].value_counts()
    assert counts["image"] == counts["audio"] == round(0.35 * 1797)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in demo.train["image"])

    wave, rate = soundfile.read(demo.train["audio"].iloc[0])
    info = soundfile.info(demo.train["audio"].iloc[0])
    assert rate == 8000 and info.subtype == "PCM_16" and 0.25 <= len(wave) / rate <= 0.5


def test_demo_is_deterministic_and_registered(demo: LoadedDataset, tmp_path: Path) -> None:
    cached = load_dataset("demo", download=False)
    assert cached.root == tmp_path / "cache" / "datasets" / "demo"
    assert (cached.root / "demo.csv").read_bytes() == (demo.root / "demo.csv").read_bytes()
    for rel in ("images/00007.png", "audio/00007.wav", "audio/01797.wav"):
        assert (cached.root / rel).read_bytes() == (demo.root / rel).read_bytes()
    other = make_demo_data(tmp_path / "other", seed=1)
    assert not other.train["corrupted"].equals(demo.train["corrupted"])


def test_fetch_verifies_checksum_from_file_url(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"modalfuse" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "dest"

    got = fetch_file(RemoteFile("sub/file.bin", source.as_uri(), digest), dest)
    assert got == dest / "sub" / "file.bin" and got.read_bytes() == source.read_bytes()

    bad = RemoteFile("sub/bad.bin", source.as_uri(), "0" * 64)
    with pytest.raises(DownloadError) as err:
        fetch_file(bad, dest)
    assert source.as_uri() in str(err.value) and "0" * 64 in str(err.value) and digest in str(err.value)
    assert sorted(p.name for p in (dest / "sub").iterdir()) == ["file.bin"]

    with pytest.raises(DownloadError, match="could not download"):
        fetch_file(RemoteFile("gone.bin", (tmp_path / "nope.bin").as_uri(), digest), dest)


def test_download_fills_the_cache_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = {}
    for name in ("a.txt", "b.txt"):
        sources[name] = tmp_path / "remote" / name
        sources[name].parent.mkdir(exist_ok=True)
        sources[name].write_text(f"content of {name}")
    files = tuple(
        RemoteFile(f"data/{n}", p.as_uri(), hashlib.sha256(p.read_bytes()).hexdigest()) for n, p in sources.items()
    )

    def loader(roots: dict[str, Path]) -> Path:
        return roots["toy"]

    monkeypatch.setitem(DATASETS, "toy", DatasetInfo("toy", "a toy", "none", "none", {"toy": files}, loader))
    root = load_dataset("toy")
    assert root == tmp_path / "cache" / "datasets" / "toy"
    assert (root / "data" / "b.txt").read_text() == "content of b.txt"

    elsewhere = download("toy", dest=tmp_path / "elsewhere")
    assert elsewhere == tmp_path / "elsewhere" / "toy" and (elsewhere / "data" / "a.txt").is_file()

    for p in sources.values():
        p.unlink()
    assert resolve_root("toy", download=False) == root
    assert resolve_root("toy", data_dir=tmp_path / "elsewhere", download=False) == elsewhere


@needs("sensor_basicmotions")
def test_local_copies_are_checked_against_the_published_checksums(tmp_path: Path) -> None:
    """A local folder whose files carry the right names but other bytes (here train and test swapped) is refused."""
    import shutil

    copy = tmp_path / "sensor_basicmotions"
    shutil.copytree(DATA / "sensor_basicmotions", copy)
    assert resolve_root("basicmotions", tmp_path, download=False) == copy  # the published files pass
    train, test = copy / "BasicMotions_TRAIN.ts", copy / "BasicMotions_TEST.ts"
    train_bytes = train.read_bytes()
    train.write_bytes(test.read_bytes())
    test.write_bytes(train_bytes)
    with pytest.raises(ConfigError, match="BasicMotions_(TRAIN|TEST).ts has SHA-256 .* another file"):
        load_dataset("basicmotions", tmp_path, download=False)
