"""Replacing the live scorer only when not worse; clear errors from the commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from recommender.aesthetics.scoring import SHIPPED_SCORER
from recommender.aesthetics.services import ScorerRefused, live_scorer_path, scorer_publish


@pytest.fixture
def aesthetics_dir(settings, tmp_path: Path) -> Path:
    settings.LOOKALIKE_AESTHETICS_DIR = tmp_path / "aesthetics"
    return settings.LOOKALIKE_AESTHETICS_DIR


def test_it_refuses_a_scorer_worse_on_held_out_pairs(aesthetics_dir, tmp_path):
    # given a candidate that orders fewer held-out rating pairs right than the live scorer
    candidate = tmp_path / "scorer-new.pt"
    candidate.write_bytes(b"new")
    # when / then
    with pytest.raises(ScorerRefused, match="ratings: 0.780 < live 0.810"):
        scorer_publish(candidate, {"ratings": 0.78, "degradations": 0.99}, {"ratings": 0.81})
    assert live_scorer_path() == SHIPPED_SCORER


def test_it_publishes_a_scorer_that_did_not_drop(aesthetics_dir, tmp_path):
    candidate = tmp_path / "scorer-new.pt"
    candidate.write_bytes(b"new")
    target = scorer_publish(candidate, {"ratings": 0.81}, {"ratings": 0.81, "clicks": 0.7})
    assert live_scorer_path() == target == aesthetics_dir / "scorer-new.pt"
    assert json.loads((aesthetics_dir / "live.json").read_text()) == {"file": "scorer-new.pt"}


def _rated_folder(tmp_path: Path, header: str, rows: list[str]) -> tuple[Path, Path]:
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(images / "a.jpg")
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    scores = tmp_path / "scores.csv"
    scores.write_text("\n".join([header, *rows]) + "\n")
    return images, scores


@pytest.mark.django_db
def test_evaluate_names_the_missing_score_column(tmp_path):
    images, scores = _rated_folder(tmp_path, "image,comment", ["a.jpg,nice"])
    with pytest.raises(CommandError, match="no score column: it needs one of mos, score"):
        call_command("evaluate_aesthetics", images=images, scores=scores)


@pytest.mark.django_db
def test_evaluate_names_the_unreadable_image(tmp_path):
    images, scores = _rated_folder(tmp_path, "image,mos", ["a.jpg,40", "broken.jpg,70"])
    with pytest.raises(CommandError, match=r"broken\.jpg cannot be read"):
        call_command("evaluate_aesthetics", images=images, scores=scores)


@pytest.mark.django_db
def test_evaluate_names_a_missing_image_and_a_bad_score(tmp_path):
    images, scores = _rated_folder(tmp_path, "image,mos", ["a.jpg,40", "gone.jpg,70"])
    with pytest.raises(CommandError, match="line 3: there is no image file"):
        call_command("evaluate_aesthetics", images=images, scores=scores)
    scores.write_text("image,mos\na.jpg,forty\n")
    with pytest.raises(CommandError, match="'forty' is not a number"):
        call_command("evaluate_aesthetics", images=images, scores=scores)


@pytest.mark.django_db
def test_train_wants_both_images_and_scores(tmp_path):
    with pytest.raises(CommandError, match="both --images and --scores"):
        call_command("train_aesthetics", images=tmp_path)


@pytest.mark.django_db
def test_train_names_the_missing_image_column(tmp_path, aesthetics_dir):
    images, scores = _rated_folder(tmp_path, "picture,mos", ["a.jpg,40"])
    with pytest.raises(CommandError, match="no image column"):
        call_command("train_aesthetics", images=images, scores=scores, degraded_photos=0)
