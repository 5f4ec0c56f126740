"""Measure retrieval quality of the configured (or a given) pipeline on a labelled image set."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from embeddings.evaluation import DiskFeatureCache, evaluate, load_csv, load_folders, open_images
from embeddings.pipeline import CROPS, POOLINGS, load_pipeline, parse_backbones
from recommender.embedding import pipeline_config


class Command(BaseCommand):
    help = (
        "Precision@1/5/10 and mAP@10 by label, and Recall@1/@10 of synthetic shopper photos, "
        "for the configured retrieval pipeline (flags override single settings)."
    )

    def add_arguments(self, parser) -> None:
        data = parser.add_argument_group("data (folders of class folders, or a CSV)")
        data.add_argument("--gallery", nargs="*", default=[], help="class-folder roots")
        data.add_argument("--queries", nargs="*", default=[], help="class-folder roots")
        data.add_argument("--csv", help="CSV with an image column and a label column")
        data.add_argument("--image-column", default="image")
        data.add_argument("--label-column", default="label")
        data.add_argument("--image-root", help="folder of the CSV's images (default: images/)")
        pipe = parser.add_argument_group("pipeline (default: the LOOKALIKE_* settings)")
        pipe.add_argument("--backbones", help="e.g. efficientnet_lite0:1,efficientnet_lite1:0.5")
        pipe.add_argument("--crop", choices=CROPS)
        pipe.add_argument("--pooling", choices=POOLINGS)
        pipe.add_argument("--mirror", type=_flag)
        pipe.add_argument("--colour-weight", type=float)
        pipe.add_argument("--layout-weight", type=float)
        pipe.add_argument("--whiten-dims", type=int)
        pipe.add_argument("--head-weight", type=float)
        pipe.add_argument("--suppress-background", type=_flag)
        pipe.add_argument("--catalog-rotation", type=float, help="degrees; 0: upright views")
        run = parser.add_argument_group("run")
        run.add_argument("--no-shopper", action="store_true", help="skip shopper photos")
        run.add_argument("--shopper-limit", type=int, help="shopper photos for a sample only")
        run.add_argument("--seed", type=int, default=0)
        run.add_argument("--json", type=Path, help="write the report here")
        run.add_argument("--plot", type=Path, help="write a bar chart (PNG) here")
        run.add_argument("--cache", type=Path, default=Path(settings.VAR_DIR) / "eval-cache")
        run.add_argument("--no-cache", action="store_true")

    def handle(self, *args, **options) -> None:
        gallery, labels, queries, query_labels = self._data(options)
        config = self._config(options)
        cache = None if options["no_cache"] else DiskFeatureCache(options["cache"])
        try:
            pipeline = load_pipeline(
                config, download=settings.LOOKALIKE_WEIGHTS_DOWNLOAD, cache=cache
            )
        except (ValueError, RuntimeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Evaluating {pipeline.model_id} on {len(gallery)} gallery photos")
        report = evaluate(
            pipeline,
            open_images(gallery),
            labels,
            open_images(queries) if queries else None,
            query_labels,
            shopper=not options["no_shopper"],
            shopper_limit=options["shopper_limit"],
            seed=options["seed"],
        )
        self._write(report, options)

    def _data(self, options: dict):
        try:
            if options["csv"]:
                gallery, labels = load_csv(
                    options["csv"],
                    image_column=options["image_column"],
                    label_column=options["label_column"],
                    image_root=options["image_root"],
                )
            elif options["gallery"]:
                gallery, labels = load_folders(options["gallery"])
            else:
                raise CommandError("Give --gallery DIR [DIR ...] or --csv FILE.")
            queries, query_labels = (
                load_folders(options["queries"])
                if options["queries"]
                else (
                    [],
                    None,
                )
            )
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if not gallery:
            raise CommandError("The gallery holds no images.")
        return gallery, labels, queries, query_labels

    def _config(self, options: dict):
        config = pipeline_config()
        changes = {
            name: options[name]
            for name in (
                "crop", "pooling", "mirror", "colour_weight", "layout_weight", "whiten_dims",
                "head_weight",
                "suppress_background", "catalog_rotation",
            )
            if options[name] is not None
        }  # fmt: skip
        if options["backbones"]:
            changes["backbones"] = parse_backbones(options["backbones"])
        try:
            return dataclasses.replace(config, **changes)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _write(self, report: dict, options: dict) -> None:
        self.stdout.write(json.dumps(report, indent=2))
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            options["json"].write_text(json.dumps(report, indent=2))
        if options["plot"]:
            plot_report(report, options["plot"])
            self.stdout.write(f"Plot written to {options['plot']}")


def plot_report(report: dict, path: Path) -> None:
    """A bar chart of one report's figures."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = ["precision@1", "precision@5", "precision@10", "map@10"]
    values = [report[n] for n in names]
    if "shopper" in report:
        names += ["shopper recall@1", "shopper recall@10"]
        values += [report["shopper"]["recall@1"], report["shopper"]["recall@10"]]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(names, values, color="#2a7f62")
    ax.set_ylim(0, 1)
    ax.set_title(report["config"], fontsize=9)
    for i, v in enumerate(values):
        ax.text(i, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not 1 or 0")
