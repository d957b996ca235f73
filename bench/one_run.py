"""Wall time of one method x one seed on the handwritten data, import included (issue target: <= 10 s on 2 cores).

    /usr/bin/time -f "%e s" python bench/one_run.py [--fusion concat] [--data-dir ../shared/data]
"""
import argparse
import time

START = time.perf_counter()

from modalfuse import MultimodalModel  # noqa: E402
from modalfuse.datasets import load_dataset  # noqa: E402

IMPORTED = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fusion", default="concat")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    ds = load_dataset("handwritten", data_dir=args.data_dir)
    model = MultimodalModel(
        ds.modalities, ds.target, model={"fusion": {"name": args.fusion}, "head_hidden": 0, "dropout": 0.1},
        train={"max_epochs": 20, "val_fraction": 0.0, "patience": 0, "progress": False, "threads": args.threads},
    )
    model.fit(ds.train)
    trained = time.perf_counter()
    acc = model.evaluate(ds.test)["accuracy"]
    done = time.perf_counter()
    print(f"{args.fusion}: accuracy {acc:.4f}; import {IMPORTED - START:.1f} s, load + train {trained - IMPORTED:.1f} s, "
          f"test {done - trained:.2f} s, total in Python {done - START:.1f} s")


if __name__ == "__main__":
    main()
