"""Visium lymph node: the 11 reference cell types mapped onto 1,000 spots (a cell-type mixture per spot), the map's
agreement with the reference's marker genes, and a plot over the spot coordinates."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from common import RESULTS_DIR, parse_args, publish  # noqa: E402
from singlecell_common import Meter, header  # noqa: E402


def main() -> None:
    args = parse_args(__doc__, "singlecell_lymphnode")
    from modalfuse.data.singlecell import read_mtx
    from modalfuse.singlecell import map_cell_types

    load0, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    d = Path(args.data_dir) / "spatial_visium_lymphnode_spacexr"
    spots = read_mtx(d / "spatial_counts_genes_x_spots.mtx.gz", d / "spatial_genes.txt", d / "spatial_coords.csv")
    ref = read_mtx(d / "ref_counts_genes_x_cells.mtx.gz", d / "ref_genes.txt", d / "ref_cells.csv")
    labels = pd.read_csv(d / "ref_cells.csv")["cell_type"].tolist()
    coords = pd.read_csv(d / "spatial_coords.csv", index_col=0)
    with Meter() as m:
        result = map_cell_types({"X": spots}, {"X": ref, "cell_type": labels}, "cell_type", coords=coords)
    in_fit = result.marker_agreement(10)
    markers = result.markers(10)
    held = map_cell_types({"X": spots}, {"X": ref, "cell_type": labels}, "cell_type", coords=coords,
                          exclude_genes=[g for gs in markers.values() for g in gs])
    # markers left out of the second fit: score them against its weights
    held.genes, held.spot_counts = result.genes, result.spot_counts
    held.profiles = result.profiles
    out_fit = held.marker_agreement(10)
    out = Path(args.out).with_suffix("") if args.out else RESULTS_DIR / "singlecell_lymphnode"
    if args.out:
        result.table().round(4).to_csv(f"{out}.csv")
        result.plot(f"{out}.png")
    lines = header("Visium lymph node: reference cell types mapped onto spots", args.threads, load0, started, "none (deterministic EM)", [
        f"data: spatial_visium_lymphnode_spacexr: {len(result.weights)} spots × 2,000 genes; reference 330 cells × 10,237 genes in 11 "
        f"types; {len(result.genes)} shared genes expressed in the reference are used",
        "method: `modalfuse.singlecell.map_cell_types`: Poisson mixture of the types' mean profiles per spot, EM weights, "
        "3 rounds of per-gene platform factors (RCTD-like); no published score exists for this downsampled set",
        f"time {m.seconds:.1f} s, peak memory {m.peak_mib:.0f} MiB above the start",
        f"map: `{Path(str(out) + '.csv').name}` (weights per spot, dominant type, coordinates), plot `{Path(str(out) + '.png').name}`",
        "marker agreement: per type the 10 reference genes of highest log fold change over the other types' mean profile; "
        "r = Pearson over spots of the type's weight with the spot's mean log1p-normalised expression of those markers. "
        "'in fit': markers were among the fitted genes; 'held out': the map refitted without all 110 marker genes, so the "
        "markers are independent evidence",
    ])
    table = in_fit[["pearson_r", "mean_weight", "spots_dominant", "markers"]].rename(columns={"pearson_r": "r (in fit)"})
    table.insert(1, "r (held out)", out_fit["pearson_r"])
    table.insert(3, "mean weight (held out)", held.weights.mean().reindex(table.index))
    lines += ["| cell type | r (markers in fit) | r (markers held out) | mean weight | mean weight (held out fit) | spots dominant | top markers |",
              "|---|---|---|---|---|---|---|"]
    for name, row in table.iterrows():
        lines.append(f"| {name} | {row['r (in fit)']:.3f} | {row['r (held out)']:.3f} | {row['mean_weight']:.3f} | "
                     f"{row['mean weight (held out)']:.3f} | {row['spots_dominant']} | {row['markers']} |")
    lines += ["", f"Mean r over types: {np.nanmean(table['r (in fit)']):.3f} with markers in the fit, "
              f"{np.nanmean(table['r (held out)']):.3f} with them held out; types with r > 0 when held out: "
              f"{int((table['r (held out)'] > 0).sum())} / {len(table)}.", "",
              f"![map]({Path(str(out) + '.png').name})"]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
