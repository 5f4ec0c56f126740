"""Measure the live aesthetics scorer against human ratings of a folder of photos."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommender.aesthetics import evaluation
from recommender.aesthetics.data import (
    RatedPhotos,
    RatingsError,
    held_out,
    open_photo,
    read_ratings,
)
from recommender.aesthetics.services import live_scorer


class Command(BaseCommand):
    help = (
        "Score rated photos with the live aesthetics scorer; print pairwise accuracy on pairs "
        "whose ratings differ by at least --gap, and Spearman's rank correlation; write a "
        "scatter plot."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--images", type=Path, required=True, help="Folder of photos.")
        parser.add_argument("--scores", type=Path, required=True, help="CSV: image,mos (0-100).")
        parser.add_argument("--gap", type=float, default=10.0)
        parser.add_argument("--json", type=Path, help="Also write the figures here.")
        parser.add_argument("--plot", type=Path, default=Path("aesthetics-scatter.png"))
        parser.add_argument("--baseline", action="store_true", help="Also the edge-filter one.")
        parser.add_argument(
            "--held-out",
            action="store_true",
            help="Only the photos train_aesthetics holds out for validation (a fifth, by name).",
        )

    def handle(self, *args, **options) -> None:
        if options["gap"] <= 0:
            raise CommandError("--gap must be positive.")
        try:
            rated = read_ratings(options["images"], options["scores"])
            if options["held_out"]:
                keep = held_out([p.name for p in rated.paths])
                rated = RatedPhotos([rated.paths[i] for i in keep], rated.scores[keep])
            photos = [open_photo(p) for p in tqdm(rated.paths, desc="Reading", unit="photo")]
        except RatingsError as exc:
            raise CommandError(str(exc)) from exc
        scorer = live_scorer()
        with tqdm(total=len(photos), desc="Scoring", unit="photo") as bar:
            predicted = scorer.score(photos, progress=bar.update)
        figures = self._figures(predicted, rated.scores, options["gap"])
        figures.update(scorer=scorer.version, photos=len(photos))
        if options["baseline"]:
            edges = [evaluation.edge_variance(p) for p in photos]
            figures["edge_variance_baseline"] = self._figures(edges, rated.scores, options["gap"])
        title = f"{scorer.version}: Spearman {figures['spearman']:.3f}, n={len(photos)}"
        evaluation.scatter_plot(predicted, rated.scores, options["plot"], title)
        figures["plot"] = str(options["plot"])
        self.stdout.write(json.dumps(figures, indent=2))
        if options["json"]:
            options["json"].write_text(json.dumps(figures, indent=2))

    def _figures(self, predicted, truth, gap: float) -> dict:
        try:
            accuracy = evaluation.pairwise_accuracy(predicted, truth, gap)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        return {
            "pairwise_accuracy": round(accuracy, 4),
            "gap": gap,
            "spearman": round(evaluation.spearman(predicted, truth), 4),
        }
