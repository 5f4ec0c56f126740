"""Retrieval quality: the evaluate_retrieval command, the crop box, the learned post-processing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image, ImageDraw

from recommender import index as vector_index
from recommender.services import index_rebuild, similar_to_product
from tests.conftest import DEMO_DIR

# Learned parts and layout off: with 0.9 of the score on colour, the expected figures are exact.
PLAIN = ["--whiten-dims", "0", "--head-weight", "0", "--layout-weight", "0"]
COLOURS = {"red": (200, 30, 30), "green": (30, 160, 60), "blue": (30, 60, 200)}


def tiny_set(root: Path, per_class: int) -> Path:
    """Class folders of flat-coloured photos, each with a white mark in another place."""
    for label, colour in COLOURS.items():
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("RGB", (96, 80), colour)
            ImageDraw.Draw(image).rectangle((8 + 12 * i, 10, 20 + 12 * i, 24), fill="white")
            image.save(root / label / f"{i}.png")
    return root


def test_evaluate_retrieval_gives_the_expected_numbers(tmp_path: Path, db) -> None:
    # given 3 classes of 4 photos, told apart by colour (colour has 0.9 of the score)
    gallery = tiny_set(tmp_path / "gallery", 4)
    out = tmp_path / "report.json"
    # when every photo queries the 11 others
    call_command(
        "evaluate_retrieval", "--gallery", str(gallery), "--colour-weight", "0.9", *PLAIN,
        "--no-shopper", "--no-cache", "--json", str(out), "--plot", str(tmp_path / "plot.png"),
    )  # fmt: skip
    report = json.loads(out.read_text())
    # then the 3 same-colour photos come first: P@1 = 1, P@5 = 3/5, P@10 = 3/10, AP = 3/3
    assert report["gallery"] == report["queries"] == 12
    assert report["precision@1"] == 1.0
    assert report["precision@5"] == pytest.approx(0.6)
    assert report["precision@10"] == pytest.approx(0.3)
    assert report["map@10"] == 1.0
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_evaluate_retrieval_scores_held_out_queries_and_shopper_photos(tmp_path: Path, db) -> None:
    gallery = tiny_set(tmp_path / "gallery", 3)
    queries = tiny_set(tmp_path / "queries", 1)
    args = ["--gallery", str(gallery), "--queries", str(queries), "--colour-weight", "0.9", *PLAIN]
    out1, out2 = tmp_path / "1.json", tmp_path / "2.json"
    call_command("evaluate_retrieval", *args, "--json", str(out1), "--cache", str(tmp_path / "c"))
    call_command("evaluate_retrieval", *args, "--json", str(out2), "--cache", str(tmp_path / "c"))
    first, second = json.loads(out1.read_text()), json.loads(out2.read_text())
    assert first["queries"] == 3 and first["precision@1"] == 1.0
    assert first["shopper"]["queries"] == 9
    assert 0 <= first["shopper"]["recall@1"] <= first["shopper"]["recall@10"] <= 1
    # Same seed, same shopper photos, same figures (the second run from the cache).
    assert first == second


def test_evaluate_retrieval_reads_a_csv_with_a_chosen_label_column(tmp_path: Path, db) -> None:
    # given a CSV whose "colour" column is the label, images beside it under images/
    tiny_set(tmp_path / "images", 2)
    rows = [f"{label}/{i}.png,{label},x" for label in COLOURS for i in range(2)]
    (tmp_path / "photos.csv").write_text("image,colour,other\n" + "\n".join(rows) + "\n")
    out = tmp_path / "report.json"
    # when
    call_command(
        "evaluate_retrieval", "--csv", str(tmp_path / "photos.csv"), "--label-column", "colour",
        "--colour-weight", "0.9", *PLAIN, "--no-shopper", "--no-cache", "--json", str(out),
    )  # fmt: skip
    # then
    report = json.loads(out.read_text())
    assert report["gallery"] == 6 and report["precision@1"] == 1.0
    with pytest.raises(CommandError, match="no column 'size'"):
        call_command(
            "evaluate_retrieval", "--csv", str(tmp_path / "photos.csv"), "--label-column", "size"
        )


def test_evaluate_retrieval_says_what_data_it_needs(db) -> None:
    with pytest.raises(CommandError, match="--gallery"):
        call_command("evaluate_retrieval")


def test_learned_post_processing_is_saved_and_used_with_its_index(small_catalog, settings) -> None:
    # given whitening and a head configured
    settings.LOOKALIKE_WHITEN_DIMS = 8
    settings.LOOKALIKE_HEAD_WEIGHT = 0.5
    from recommender.services import products_embed

    products_embed([p.pk for p in small_catalog])
    # when
    manifest = index_rebuild()
    # then the manifest names its post-processing file; the vectors are shape and layout,
    # each whitened to 8, the 72 colour bins as they are, and 4 category scores
    assert manifest.model_id.endswith("cc.multi.mir.col0.1.lay0.5.w8.h0.5q0.bg.rot8x1")
    assert manifest.postprocessor == f"post-{manifest.version:06d}.npz"
    assert manifest.dim == 8 + 8 + 72 + 4
    data = vector_index.read_postprocessor(settings.LOOKALIKE_INDEX_DIR, manifest)
    assert data is not None
    result = similar_to_product(small_catalog[0].pk, 3)
    assert len(result.items) == 3
    assert all(-1.0 <= item.score <= 1.0 + 1e-6 for item in result.items)


def test_a_tampered_post_processing_file_is_refused(small_catalog, settings) -> None:
    settings.LOOKALIKE_WHITEN_DIMS = 8
    from recommender.services import products_embed

    products_embed([p.pk for p in small_catalog])
    manifest = index_rebuild()
    path = Path(settings.LOOKALIKE_INDEX_DIR) / manifest.postprocessor
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(vector_index.IndexCorrupt, match="checksum"):
        vector_index.read_postprocessor(settings.LOOKALIKE_INDEX_DIR, manifest)


HOSTILE_BOXES = ["1,2,3", "a,b,c,d", "0.9,0,0.1,1", "-1,0,1,1", "0,0,7,1", "nan,0,1,1",
                 "0,0,0.01,0.01", "0," * 500]  # fmt: skip


def photo_bytes(sku: str) -> bytes:
    return (DEMO_DIR / "images" / f"{sku}.jpg").read_bytes()


@pytest.mark.parametrize("box", HOSTILE_BOXES)
def test_the_api_refuses_a_bad_crop_box_with_a_400(api, small_catalog, box: str) -> None:
    upload = SimpleUploadedFile("shoe.jpg", photo_bytes(small_catalog[0].sku))
    response = api.post(reverse("api:image-search"), {"image": upload, "box": box})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "box" in body["errors"]
    assert "box" in body["message"].lower() or "100 characters" in body["message"]


@pytest.mark.parametrize("box", HOSTILE_BOXES[:4])
def test_the_upload_page_refuses_a_bad_crop_box_with_a_400(client, small_catalog, box) -> None:
    upload = SimpleUploadedFile("shoe.jpg", photo_bytes(small_catalog[0].sku))
    response = client.post(reverse("shop:photo-search"), {"photo": upload, "box": box})
    assert response.status_code == 400
    assert "crop box" in response.content.decode()


def test_a_crop_box_around_the_product_still_finds_it(api, small_catalog) -> None:
    # given a product photo set in a wide grey frame, and a box around the photo
    target = small_catalog[5]
    with Image.open(DEMO_DIR / "images" / f"{target.sku}.jpg") as photo:
        framed = Image.new("RGB", (photo.width * 3, photo.height * 3), (90, 90, 90))
        framed.paste(photo, (photo.width, photo.height))
    data = SimpleUploadedFile("framed.png", _png(framed))
    # when
    response = api.post(
        reverse("api:image-search"), {"image": data, "box": "0.3333,0.3333,0.6667,0.6667", "k": 1}
    )
    # then
    assert response.status_code == 200
    assert response.json()["results"][0]["id"] == target.pk


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_upload_page_offers_a_crop_box(client, db) -> None:
    html = client.get(reverse("shop:photo-search")).content.decode()
    assert 'name="box"' in html and 'id="crop-frame"' in html


def test_vectors_of_two_configurations_never_share_an_index(small_catalog, settings) -> None:
    first = index_rebuild()
    settings.LOOKALIKE_POOLING = "avg"
    from recommender.services import products_embed

    products_embed([p.pk for p in small_catalog])
    second = index_rebuild()
    assert first.model_id != second.model_id
    assert np.isfinite(second.count) and second.count == len(small_catalog)
