"""Davis training throughput by batch size, each distinct drug/protein encoded once per batch vs once per pair.

Times optimisation steps (forward, backward, AdamW) of the GraphDTA-GIN-sized network of
``bench/davis.py`` on random batches of the training pairs. "Per pair" gives every row its own copy
of its drug graph and protein, which is what the reference code computes.
"""
from __future__ import annotations

import time

from common import command_line, machine_info, parse_args, publish


def extra(parser) -> None:
    parser.add_argument("--batch-sizes", default="512,1024,2048,4096")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per setting (after one warm-up step)")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], "davis_throughput", default_threads=2, extra=extra)
    import torch

    from modalfuse.api import MultimodalModel
    from modalfuse.config import FusionConfig, ModelConfig
    from modalfuse.data.entities import Indexed
    from modalfuse.datasets import load_dataset
    from modalfuse.data.target import TargetEncoder
    from modalfuse.evaluate.benchmark import load_average

    davis = load_dataset("davis", args.data_dir)
    drug, protein = davis.modalities
    drug.encoder.name, drug.encoder.dim, drug.encoder.options = "graph_gin", 128, {"hidden": 32, "layers": 5}
    protein.encoder.name, protein.encoder.dim = "sequence_positional_cnn", 128
    model = MultimodalModel([drug, protein], target="affinity", task="regression",
                            model=ModelConfig(fusion=FusionConfig(name="concat", dim=1024), head_hidden=256, dropout=0.2))
    model.target_encoder = TargetEncoder("regression")
    start = time.perf_counter()
    features = model._features(None, "train", fit=True, frame_table=(davis.train, None, None))
    prep = time.perf_counter() - start

    def per_pair(batch):
        for name, x in batch.inputs.items():
            batch.inputs[name] = Indexed(x.values[x.index], torch.arange(len(x)))
        return batch

    rows = []
    load_start = load_average()
    steps = 1 if args.quick else args.steps
    for size in [int(s) for s in args.batch_sizes.split(",")]:
        for mode in ("once per batch", "once per pair"):
            torch.manual_seed(0)
            net = model._build_net().train()
            opt = torch.optim.AdamW(net.parameters(), 1e-3)
            order = torch.randperm(len(features))
            distinct, elapsed = [], 0.0
            for step in range(steps + 1):
                batch = features[order[step * size:(step + 1) * size]]
                if mode == "once per pair":
                    batch = per_pair(batch)
                t = time.perf_counter()
                loss = torch.nn.functional.mse_loss(net(batch).output[:, 0], batch.target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step:
                    elapsed += time.perf_counter() - t
                    distinct.append(len(batch.inputs["protein"].values))
            rows.append((size, mode, sum(distinct) / len(distinct), steps * size / elapsed))
            print(rows[-1], flush=True)

    info = machine_info(args.threads)
    base = {size: rate for size, mode, _, rate in rows if mode == "once per pair"}
    lines = [
        "# Davis training throughput (GraphDTA-GIN-sized network)", "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
        f"Machine: {info}  ",
        f"Load average (1 / 5 / 15 min): {load_start} at the start of the timed steps, {load_average()} at the end  ",
        f"Command: `{command_line()}`  ",
        f"Seed: 0; {steps} timed optimisation steps per row after one warm-up step  ",
        f"Featurising the 25,046 training pairs (68 drugs, 379 distinct sequences): {prep:.1f} s", "",
        "| batch | proteins encoded | distinct proteins per batch | pairs/s | × per pair | × reference (196 pairs/s) |",
        "|---|---|---|---|---|---|",
        *[f"| {size} | {mode} | {d:.0f} | {rate:,.0f} | {rate / base[size]:.1f} | {rate / 196:.1f} |" for size, mode, d, rate in rows],
        "", "The reference figure is the GraphDTA code (GIN, batch 512) on the same 2 cores, from issue #6. "
        "Accuracy of this network at batch 2048 (150 epochs, one thread): docs/results/davis.md.",
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
