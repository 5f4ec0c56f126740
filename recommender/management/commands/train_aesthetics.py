"""Train the aesthetics scorer from the chosen pair sources; publish it if it is not worse."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommender.aesthetics import pipeline
from recommender.aesthetics.data import RatingsError
from recommender.aesthetics.features import PhotoFeatures
from recommender.aesthetics.model import scorer_save
from recommender.aesthetics.services import ScorerRefused, live_scorer, scorer_publish
from recommender.aesthetics.training import TrainConfig

DEMO_PHOTOS = Path(settings.BASE_DIR) / "demo_catalog" / "images"


class Command(BaseCommand):
    help = (
        "Train the aesthetics scorer on pairs from human ratings (--images/--scores), synthetic "
        "degradations of good product photos, and shopper clicks; publish it only if its "
        "held-out pairwise accuracy did not drop."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--images", type=Path, help="Folder of rated photos.")
        parser.add_argument("--scores", type=Path, help="CSV: image,mos (0-100) per photo.")
        parser.add_argument("--min-gap", type=float, default=10.0, help="Rating pairs' gap.")
        parser.add_argument("--degradations", type=Path, default=DEMO_PHOTOS)
        parser.add_argument("--degraded-photos", type=int, default=40, help="0: none.")
        parser.add_argument("--clicks", action="store_true", help="Add shopper click pairs.")
        parser.add_argument("--steps", type=int, default=TrainConfig.steps)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--cache", type=Path, default=None, help="Feature cache folder.")
        parser.add_argument("--output", type=Path, help="Write the scorer here, do not publish.")
        parser.add_argument("--report", type=Path, help="Write the training report (JSON).")

    def handle(self, *args, **options) -> None:
        if bool(options["images"]) != bool(options["scores"]):
            raise CommandError("Give both --images and --scores, or neither.")
        started = time.perf_counter()
        features = PhotoFeatures(device=settings.LOOKALIKE_DEVICE)
        cache = options["cache"] or Path(settings.LOOKALIKE_AESTHETICS_DIR) / "features"
        sources = self._sources(options, features, cache)
        config = TrainConfig(steps=options["steps"], seed=options["seed"])
        with tqdm(total=config.steps, desc="Training", unit="step") as bar:
            scorer, report = pipeline.fit(sources, config, lambda step, loss: bar.update(1))
        report["total_seconds"] = round(time.perf_counter() - started, 1)
        report["options"] = {k: str(v) for k, v in options.items() if k in _RECORDED}
        self._print(report)
        target = options["output"] or (
            Path(settings.LOOKALIKE_AESTHETICS_DIR) / f"scorer-{time.strftime('%Y%m%d-%H%M%S')}.pt"
        )
        meta = {k: report[k] for k in ("held_out_pair_accuracy", "ratings_held_out") if k in report}
        version = scorer_save(scorer, target, meta)
        report["version"] = version
        if options["report"]:
            options["report"].write_text(json.dumps(report, indent=2))
        if options["output"]:
            self.stdout.write(f"Wrote {target} ({version}); not published.")
            return
        self._publish(target, version, report, sources)

    def _sources(self, options: dict, features: PhotoFeatures, cache: Path) -> list:
        sources = []
        try:
            if options["images"]:
                with tqdm(desc="Rated photos", unit="photo") as bar:
                    sources.append(
                        pipeline.ratings_source(
                            options["images"], options["scores"], features, cache,
                            min_gap=options["min_gap"], progress=bar.update,
                        )
                    )  # fmt: skip
            if options["degraded_photos"] > 0:
                photos = sorted(options["degradations"].glob("*.jpg"))
                if not photos:
                    raise CommandError(f"No .jpg photos in {options['degradations']} to degrade.")
                photos = photos[:: max(1, len(photos) // options["degraded_photos"])]
                photos = photos[: options["degraded_photos"]]
                with tqdm(desc="Degraded photos", unit="photo") as bar:
                    sources.append(
                        pipeline.degradations_source(photos, features, cache, progress=bar.update)
                    )
            if options["clicks"]:
                from recommender.aesthetics.clicks import clicks_source

                sources.append(clicks_source(features, cache))
        except RatingsError as exc:
            raise CommandError(str(exc)) from exc
        sources = [s for s in sources if len(s.train)]
        if not sources:
            raise CommandError("No training pairs: give --images/--scores, photos or --clicks.")
        return sources

    def _print(self, report: dict) -> None:
        self.stdout.write(f"Trained in {report['seconds']} s (total {report['total_seconds']} s)")
        self.stdout.write(f"Pairs: {report['pairs']}; loss {report['loss_first']:.3f} -> "
                          f"{report['loss_last']:.3f}")  # fmt: skip
        for name, value in report["held_out_pair_accuracy"].items():
            self.stdout.write(f"Held-out pairwise accuracy, {name}: {value:.3f}")
        if "ratings_held_out" in report:
            r = report["ratings_held_out"]
            self.stdout.write(
                f"Rated photos held out ({r['photos']}): pairwise accuracy (gap {r['gap']:g}) "
                f"{r['pairwise_accuracy']:.3f}, Spearman {r['spearman']:.3f}"
            )

    def _publish(self, target: Path, version: str, report: dict, sources: list) -> None:
        live = live_scorer()
        live_accuracy = pipeline.held_out_accuracy(
            live.score_features(*pipeline.stacked(sources)), pipeline.combine(sources)[1]
        )
        self.stdout.write(f"Live scorer {live.version}: held-out accuracy {live_accuracy}")
        try:
            scorer_publish(target, report["held_out_pair_accuracy"], live_accuracy)
        except ScorerRefused as exc:
            target.unlink(missing_ok=True)
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Published {version}; it is now live."))


_RECORDED = {"images", "scores", "min_gap", "degradations", "degraded_photos", "clicks", "steps"}
