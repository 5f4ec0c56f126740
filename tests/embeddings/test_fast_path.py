"""The fast embedding path computes what the plain path computes (no timings here).

bf16 autocast, channels_last, batching and the on-device JPEG decoder must give vectors within
cosine 0.999 of fp32, one photo at a time, decoded by PIL; drafted decoding stays close.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import decode_jpeg

from embeddings.extractor import _build_extractor
from embeddings.images import decode_photo, decode_photos
from embeddings.jpeg import _letterbox as letterbox_tensor
from embeddings.jpeg import embed_jpegs, jpeg_batch
from embeddings.pipeline import Pipeline, PipelineConfig, decode_side
from embeddings.shopper import shopper_photos
from tests.conftest import DEMO_DIR, pick_rows

STORED_SIDE = 1200  # shop.images.MAX_SIDE
MIN_COSINE = 0.999


def jpeg(image: Image.Image, long_side: int, quality: int = 88) -> bytes:
    scale = long_side / max(image.size)
    resized = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))
    buffer = io.BytesIO()
    resized.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """Real demo photos of four kinds of shoe, and a shopper-like photo on a textured floor."""
    rows = pick_rows(1, ("boots", "sandals", "heels", "sneakers"))
    real = [Image.open(DEMO_DIR / "images" / row["image"]).convert("RGB") for row in rows]
    return real + shopper_photos(real[:1], seed=3)


@pytest.fixture(scope="module")
def fp32():
    return _build_extractor("efficientnet_lite0", None, "cpu", "fp32", download=False)


@pytest.fixture(scope="module")
def bf16():
    return _build_extractor("efficientnet_lite0", None, "cpu", "bf16", download=False)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_batched_bf16_catalog_vectors_match_fp32_one_at_a_time(photos, fp32, bf16) -> None:
    # given the default pipeline in fp32 (one photo per call) and in bf16 (one batch)
    config = PipelineConfig()
    slow, fast = Pipeline(config, [fp32]), Pipeline(config, [bf16])
    # when
    one_by_one = np.vstack([slow.embed_catalog([photo]) for photo in photos])
    batched = fast.embed_catalog(photos)
    # then
    for extractor in (fp32, bf16):
        batch = extractor.to_device(torch.zeros(1, 3, 8, 8))
        assert batch.is_contiguous(memory_format=torch.channels_last)
    assert cosines(one_by_one, batched).min() >= MIN_COSINE


# Drafting moves the vectors more than bf16 does (measured min 0.9975 on the demo photos at
# the stored size), which is why LOOKALIKE_DRAFT and LOOKALIKE_QUERY_DRAFT are off by default.
DRAFT_MIN_COSINE = 0.995


def test_a_drafted_jpeg_embeds_close_to_the_full_decode(photos, fp32) -> None:
    # given photos stored at the shop's size, decoded in full and drafted for the pipeline
    pipeline = Pipeline(PipelineConfig(), [fp32])
    stored = [jpeg(photo, STORED_SIDE) for photo in photos]
    side = decode_side(pipeline.config)
    full = [decode_photo(data) for data in stored]
    drafted = [decode_photo(data, side) for data in stored]
    # then the decoder really scaled down, no further than the pipeline needs
    assert all(d.size[0] < f.size[0] for d, f in zip(drafted, full, strict=True))
    assert min(min(d.size) for d in drafted) >= side
    # and the vectors moved little
    xf, xd = pipeline.embed_catalog(full), pipeline.embed_catalog(drafted)
    assert cosines(xf, xd).min() >= DRAFT_MIN_COSINE


def test_the_device_jpeg_decoder_embeds_like_pil(photos, fp32) -> None:
    # given the same JPEG bytes through PIL and through torchvision's decoder (nvJPEG on a GPU)
    datas = [jpeg(photo, 600) for photo in photos]
    via_pil = fp32.embed([Image.open(io.BytesIO(data)) for data in datas])
    # when
    via_tensor = embed_jpegs(fp32, datas, crop="letterbox", batch_size=2)
    # then
    assert via_tensor.shape == via_pil.shape
    assert cosines(via_pil, via_tensor).min() >= MIN_COSINE


def test_the_device_jpeg_batch_letterboxes_and_normalises(fp32) -> None:
    # given a wide red JPEG
    data = jpeg(Image.new("RGB", (400, 200), (255, 0, 0)), 400, quality=95)
    # when
    batch = jpeg_batch([data], fp32.backbone, "letterbox", torch.device("cpu"))
    # then the square is white above and below the photo, red in the middle
    mean, std = torch.tensor(fp32.backbone.mean), torch.tensor(fp32.backbone.std)
    white = (1 - mean) / std
    assert batch.shape == (1, 3, 224, 224)
    torch.testing.assert_close(batch[0, :, 5, 112], white, atol=0.05, rtol=0)
    assert batch[0, 0, 112, 112] > batch[0, 1, 112, 112] + 1


@pytest.mark.parametrize("crop", ["centre", "letterbox", "stretch"])
def test_photos_resized_together_match_the_per_photo_transforms(photos, fp32, crop) -> None:
    # given photos of three sizes, two of each, in mixed order
    datas = [jpeg(photo, side) for side in (300, 420, 300) for photo in photos[:2]]
    datas.append(jpeg(photos[2], 420))
    # when the batch is made with photos of a size resized together
    batch = jpeg_batch(datas, fp32.backbone, crop, torch.device("cpu"))
    # then each photo is what torchvision's transforms make of it alone, to one grey level
    transform = fp32.backbone.tensor_transforms(crop)
    decoded = [decode_jpeg(torch.frombuffer(bytearray(d), dtype=torch.uint8)) for d in datas]
    one_by_one = torch.stack(
        [transform(letterbox_tensor(i) if crop == "letterbox" else i) for i in decoded]
    )
    level = 1 / 255 / min(fp32.backbone.std)
    assert batch.shape == one_by_one.shape == (len(datas), 3, 224, 224)
    assert (batch - one_by_one).abs().max() <= level * 1.01


def test_embedding_jpegs_in_several_batches_keeps_their_order(photos, fp32) -> None:
    # given photos of different sizes, more than one batch of them
    datas = [jpeg(photo, side) for side in (260, 380) for photo in photos]
    # when they go through the prefetching path two at a time, and each alone
    together = embed_jpegs(fp32, datas, crop="centre", batch_size=2)
    alone = np.concatenate([embed_jpegs(fp32, [d], crop="centre") for d in datas])
    # then the rows are the same photos in the same order
    assert together.shape == (len(datas), fp32.dim)
    assert cosines(together, alone).min() >= 0.9999


def test_an_unreadable_jpeg_in_a_later_batch_raises_and_stops_the_decoder(photos, fp32) -> None:
    # given good photos, then bytes that are not a JPEG in the third batch
    datas = [jpeg(photo, 300) for photo in photos[:4]] + [b"\xff\xd8 not a jpeg"]
    # when they are embedded two at a time, then the decoder's error reaches the caller
    with pytest.raises(RuntimeError):
        embed_jpegs(fp32, datas, crop="centre", batch_size=2)
    # and no decoding thread is left behind
    assert not [t for t in threading.enumerate() if t.name == "jpeg-decode"]


def test_parallel_decoding_keeps_the_order_and_reports_unreadable_photos() -> None:
    # given photos of distinct sizes and, between them, bytes that are no image
    datas = [jpeg(Image.new("RGB", (40 + i, 30), (i, 0, 0)), 40 + i) for i in range(6)]
    datas.insert(3, b"not a photo")
    # when decoded by threads (from loader functions) and by processes (from bytes)
    by_threads = decode_photos([lambda d=d: d for d in datas], workers=3)
    by_processes = decode_photos(datas, workers=2, processes=True)
    # then
    for decoded in (by_threads, by_processes):
        assert isinstance(decoded[3], OSError)
        sizes = [image.size[0] for image in decoded if isinstance(image, Image.Image)]
        assert sizes == [40, 41, 42, 43, 44, 45]


def test_worker_processes_refuse_loader_functions() -> None:
    with pytest.raises(ValueError, match="need bytes"):
        decode_photos([lambda: b""], processes=True)
