"""Where a data-parallel training step's time goes on 2 CPU cores: the spoken-digit CNN, one thread a process.

Median milliseconds of one training step (forward, backward, Adam) of the recipe's network, in plain torch (no
Lightning), each measured in fresh processes after warm-up steps:
  alone B      one process, the whole global batch B (the 1-process side of bench/distributed_scaling.py);
  alone B/2    one process, half of it (what each rank computes);
  pair B/2     two independent processes at once, B/2 each (the cost of sharing the machine: caches, memory, host);
  no_sync B/2  two DDP ranks (gloo) that skip the gradient all-reduce (DDP's bookkeeping, no communication);
  ddp B/2      two DDP ranks with it (the 2-process side).
The ratio a 2-process run can reach is B / ddp-step against B / alone-step, i.e. alone B / ddp B/2.

    .venv/bin/python bench/ddp_step_cost.py --batch-sizes 64,256      # prints a table; bench/distributed_scaling.py includes it
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_data_dir, recipe_model  # noqa: E402

MODES = ("alone B", "alone B/2", "pair B/2", "no_sync B/2", "ddp B/2")


def _network(data_dir: str):
    """The recipe's network and featurised training rows (preprocessors fitted in one short epoch on 600 rows)."""
    import torch
    from modalfuse.datasets import load_dataset
    from modalfuse.train.module import MultimodalModule

    ds = load_dataset("spoken_digits", data_dir=data_dir, download=False)
    model = recipe_model("spoken_digits", "fused concat", ds, 0, train={"max_epochs": 1, "patience": 0, "threads": 1})
    rows = ds.train.sample(600, random_state=0)  # every class (the table is sorted by digit)
    model.fit(rows)
    torch.set_num_threads(1)
    return MultimodalModule(model.net, model.train_config, 0.0), model._features(rows, "steps")


def _worker(rank: int, world: int, mode: str, batch: int, steps: int, port: int, data_dir: str, queue) -> None:
    import time

    import torch
    import torch.distributed as dist
    from modalfuse.train.module import _loss

    torch.set_num_threads(1)
    module, features = _network(data_dir)
    ddp = None
    if mode.startswith(("ddp", "no_sync")):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        ddp = torch.nn.parallel.DistributedDataParallel(module.net)
        dist.barrier()
    opt = torch.optim.Adam(module.parameters(), 1e-3)
    module.train()
    rows = features[list(range(rank * batch, (rank + 1) * batch))]
    times = []
    for _ in range(steps + 3):  # the first 3 are warm-up
        start = time.perf_counter()
        with contextlib.nullcontext() if ddp is None or mode.startswith("ddp") else ddp.no_sync():
            loss = module.loss(rows)[0] if ddp is None else _loss(module.net.head.loss, ddp(rows).output, rows.target)
            opt.zero_grad()
            loss.backward()  # under DDP, the gradients' all-reduce runs here (skipped in no_sync)
        opt.step()
        times.append(time.perf_counter() - start)
    times = sorted(times[3:])
    queue.put((rank, 1000 * times[len(times) // 2]))
    if ddp is not None:
        dist.destroy_process_group()


def step_costs(global_batch: int, data_dir: str, steps: int = 20, port: int = 29533) -> dict[str, float]:
    """{mode: median ms a step} for ``global_batch`` (the slower rank where two run)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out = {}
    for mode in MODES:
        world = 1 if mode.startswith("alone") else 2
        batch = global_batch if mode == "alone B" else global_batch // 2
        queue = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(r, world, mode, batch, steps, port, data_dir, queue)) for r in range(world)]
        for proc in procs:
            proc.start()
        found = []
        while len(found) < world:
            try:
                found.append(queue.get(timeout=5))
            except Exception:  # queue.Empty: a worker that died leaves nothing to wait for
                if any(proc.exitcode not in (None, 0) for proc in procs):
                    for proc in procs:
                        proc.kill()
                    raise RuntimeError(f"{mode}: a worker failed (exit codes {[proc.exitcode for proc in procs]})")
        for proc in procs:
            proc.join()
        out[mode] = max(ms for _, ms in found)
    return out


def table(costs: dict[int, dict[str, float]]) -> list[str]:
    lines = ["| global batch | " + " | ".join(f"{m} (ms)" for m in MODES) + " | reachable ratio: alone B / pair B/2 | "
             "ratio: alone B / ddp B/2 |", "|---|" + "---|" * (len(MODES) + 2)]
    for batch, c in costs.items():
        lines.append(f"| {batch} | " + " | ".join(f"{c[m]:.1f}" for m in MODES) +
                     f" | {c['alone B'] / c['pair B/2']:.2f} | {c['alone B'] / c['ddp B/2']:.2f} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--batch-sizes", default="64,256")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    costs = {b: step_costs(b, args.data_dir, args.steps) for b in (int(x) for x in args.batch_sizes.split(","))}
    print("\n".join(table(costs)))


if __name__ == "__main__":
    main()
