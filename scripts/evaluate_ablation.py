"""Reproduce docs/evaluation.md: every pipeline variant on clothing-small and the demo shoes.

    python scripts/evaluate_ablation.py [--clothing ../shared/data/clothing-small-cc0]

Backbone features are cached under var/eval-cache, so a second run only redoes what changed.
Writes docs/evaluation.json; `--report` then draws docs/evaluation.png and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings.evaluation import (  # noqa: E402
    DiskFeatureCache,
    evaluate,
    load_csv,
    load_folders,
    open_images,
    throughput,
)
from embeddings.pipeline import PipelineConfig, load_pipeline  # noqa: E402

NAIVE = PipelineConfig(
    catalog_rotation=0.0,
    crop="centre",
    pooling="avg",
    mirror=False,
    colour_weight=0.0,
    layout_weight=0.0,
    suppress_background=False,
    whiten_dims=0,
    head_weight=0.0,
)
LITE01 = (("efficientnet_lite0", 1.0), ("efficientnet_lite1", 1.0))


def variants() -> dict[str, PipelineConfig]:
    """Each "+" row adds one change to the row before it; the others change one thing."""
    r = dataclasses.replace
    gem = r(NAIVE, pooling="gem")
    mirror = r(gem, mirror=True)
    bg = r(mirror, suppress_background=True)
    multi = r(bg, pooling="multi")
    whiten = r(multi, whiten_dims=256)
    colour = r(whiten, head_weight=0.7, layout_weight=0.5, colour_weight=0.1)
    return {
        "naive: lite0, centre crop, avg": NAIVE,
        "naive, letterbox instead of centre crop": r(NAIVE, crop="letterbox"),
        "naive, multi-layer GeM instead of avg": r(NAIVE, pooling="multi"),
        "+ GeM": gem,
        "+ mirror averaging": mirror,
        "+ background suppression (query)": bg,
        "+ multi-layer GeM": multi,
        "+ PCA whitening 256": whiten,
        "+ colour 0.15": r(whiten, colour_weight=0.15),
        "+ head 0.5 (uploads without head)": r(whiten, head_weight=0.5),
        "head 0.5, uploads with head 0.5 too": r(whiten, head_weight=0.5, query_head_weight=0.5),
        "+ head 0.7 (uploads without head)": r(whiten, head_weight=0.7),
        "+ layout 0.5 (3x3 regions, whitened apart)": r(whiten, head_weight=0.7, layout_weight=0.5),
        "+ colour 0.1": colour,
        "+ catalog views tilted 8 degrees = default": r(colour, catalog_rotation=8.0),
        "tilted views drawn at 1.5x the backbone's size": r(
            colour, catalog_rotation=8.0, tilt_oversample=1.5
        ),
        "tilted views drawn at 2x the backbone's size": r(
            colour, catalog_rotation=8.0, tilt_oversample=2.0
        ),
        "tilted 4 degrees instead of 8": r(colour, catalog_rotation=4.0),
        "tilted 12 degrees instead of 8": r(colour, catalog_rotation=12.0),
        "+ colour 0.1, without whitening": r(colour, whiten_dims=0),
        "ensemble lite0+lite1 (multi, mirror, bg)": r(multi, backbones=LITE01),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clothing", default=str(ROOT.parent / "shared/data/clothing-small-cc0"))
    parser.add_argument("--shoes", default=str(ROOT / "demo_catalog/manifest.csv"))
    parser.add_argument("--shopper-limit", type=int, default=300)
    parser.add_argument("--only", nargs="*", help="names of variants to run")
    parser.add_argument("--datasets", nargs="*", default=["shoes", "clothing"])
    parser.add_argument("--report", action="store_true", help="only print the table, plot")
    parser.add_argument("--out", default=str(ROOT / "docs/evaluation.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.report:
        previous = _previous(args.out)
        results = {name: previous[name] for name in variants() if name in previous}
        plot(results, Path(args.out).with_suffix(".png"))
        print(table(results))
        return

    clothing = Path(args.clothing)
    g_paths, g_labels = load_folders([clothing / "train", clothing / "validation"])
    q_paths, q_labels = load_folders([clothing / "test"])
    s_paths, s_labels = load_csv(args.shoes, label_column="category")
    data = {"shoes": (open_images(s_paths), s_labels, None, None)}
    if "clothing" in args.datasets:
        data["clothing"] = (open_images(g_paths), g_labels, open_images(q_paths), q_labels)
    cache = DiskFeatureCache(ROOT / "var/eval-cache")
    sample = data["shoes"][0][:32]
    results = _previous(args.out)
    # --only also sets the order: cheap rows (shared backbone passes) can come first.
    for name in args.only or list(variants()):
        config = variants()[name]
        row = {"variant": name, "config": dataclasses.asdict(config)}
        pipeline = load_pipeline(config, cache=cache)
        for dataset, (gallery, labels, queries, query_labels) in data.items():
            if dataset not in args.datasets:
                continue
            # Every demo shoe gets a shopper photo; clothing a seeded sample (CPU time).
            limit = args.shopper_limit if dataset == "clothing" else None
            row[dataset] = evaluate(
                pipeline, gallery, labels, queries, query_labels, shopper_limit=limit
            )
        plain = load_pipeline(config)
        row["catalog_img_per_s"] = round(throughput(plain.embed_catalog, sample), 1)
        row["query_img_per_s"] = round(throughput(plain.embed_query, sample), 1)
        results[name] = row
        print(json.dumps(row), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


def table(results: dict) -> str:
    """The Markdown table of docs/evaluation.md."""
    lines = [
        "| variant | clothing P@1 | P@5 | P@10 | mAP@10 | shopper R@1 | R@10 "
        "| shoes P@1 | P@5 | P@10 | mAP@10 | shopper R@1 | R@10 | catalog img/s | upload img/s |",
        "|---" * 15 + "|",
    ]
    for name, row in results.items():
        cells = [name]
        for dataset in ("clothing", "shoes"):
            r = row.get(dataset)
            if r is None:
                cells += ["-"] * 6
                continue
            cells += [f"{r[m]:.3f}" for m in ("precision@1", "precision@5", "precision@10")]
            cells += [f"{r['map@10']:.3f}"]
            cells += [f"{r['shopper']['recall@1']:.3f}", f"{r['shopper']['recall@10']:.3f}"]
        cells += [f"{row['catalog_img_per_s']:.1f}", f"{row['query_img_per_s']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """Grouped bars: clothing P@10 and shopper Recall@1 on both sets, per variant."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = list(results)
    series = {
        "clothing P@10": [results[n].get("clothing", {}).get("precision@10", 0) for n in names],
        "clothing shopper R@1": [
            results[n].get("clothing", {}).get("shopper", {}).get("recall@1", 0) for n in names
        ],
        "shoes shopper R@1": [results[n]["shoes"]["shopper"]["recall@1"] for n in names],
    }
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.27
    for i, (label, values) in enumerate(series.items()):
        ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=label)
    ax.axhline(0.85, color="grey", lw=0.8, ls="--")
    ax.axhline(0.90, color="grey", lw=0.8, ls=":")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Retrieval quality per pipeline variant (docs/evaluation.md)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _previous(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    main()
