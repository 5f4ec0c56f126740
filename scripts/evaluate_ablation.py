"""Reproduce docs/evaluation.md: every pipeline variant on clothing-small and the demo shoes.

    python scripts/evaluate_ablation.py [--clothing ../shared/data/clothing-small-cc0]

Backbone features are cached under var/eval-cache, so a second run only redoes what changed.
Writes docs/evaluation.json and docs/evaluation.png and prints the Markdown table.
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

NAIVE = PipelineConfig(crop="centre", pooling="avg", mirror=False, suppress_background=False)
LITE01 = (("efficientnet_lite0", 1.0), ("efficientnet_lite1", 1.0))


def variants() -> dict[str, PipelineConfig]:
    """Each "+" row adds one change to the row before it; the others change one thing."""
    r = dataclasses.replace
    gem = r(NAIVE, pooling="gem")
    mirror = r(gem, mirror=True)
    bg = r(mirror, suppress_background=True)
    return {
        "naive: lite0, centre crop, avg": NAIVE,
        "naive, letterbox instead of centre crop": r(NAIVE, crop="letterbox"),
        "naive, multi-layer GeM instead of avg": r(NAIVE, pooling="multi"),
        "+ GeM": gem,
        "+ mirror averaging": mirror,
        "+ background suppression (query)": bg,
        "+ colour 0.15": r(bg, colour_weight=0.15),
        "+ PCA whitening 256": r(bg, whiten_dims=256),
        "+ projection head 0.5": r(bg, head_weight=0.5),
        "+ whitening 256 + head 0.5": r(bg, whiten_dims=256, head_weight=0.5),
        "ensemble lite0+lite1 (GeM, mirror, bg)": r(bg, backbones=LITE01),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clothing", default=str(ROOT.parent / "shared/data/clothing-small-cc0"))
    parser.add_argument("--shoes", default=str(ROOT / "demo_catalog/manifest.csv"))
    parser.add_argument("--shopper-limit", type=int, default=300)
    parser.add_argument("--only", nargs="*", help="names of variants to run")
    parser.add_argument("--datasets", nargs="*", default=["shoes", "clothing"])
    parser.add_argument("--out", default=str(ROOT / "docs/evaluation.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

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
    for name, config in variants().items():
        if args.only and name not in args.only:
            continue
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


def _previous(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    main()
