"""Embedding throughput of the product pipeline on the demo photos, fp32 against auto precision.

Usage: python scripts/bench_embedding.py [--backbone efficientnet_lite0] [--weights-file F]
ResNet throughput does not depend on the weights' values, so a random-init state dict
(--random-weights) measures it where torchvision's weights cannot be downloaded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embeddings.extractor import _build_extractor  # noqa: E402
from embeddings.registry import get_backbone  # noqa: E402

DEMO_IMAGES = Path(__file__).resolve().parent.parent / "demo_catalog" / "images"


def random_weights(name: str) -> str:
    """A state-dict file of the backbone with random init."""
    path = Path(tempfile.mkdtemp()) / f"{name}-random.pth"
    torch.save(get_backbone(name).build().state_dict(), path)
    return str(path)


def main() -> None:
    """Print img/s for each precision, and the cosine of reduced-precision vectors to fp32."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--weights-file")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    weights = random_weights(args.backbone) if args.random_weights else args.weights_file
    paths = sorted(DEMO_IMAGES.glob("*.jpg"))[: args.images]
    images = [Image.open(p).convert("RGB") for p in paths]
    results = {}
    for precision in ("fp32", "auto"):
        extractor = _build_extractor(args.backbone, weights, "auto", precision, download=False)
        extractor.embed(images[: args.batch_size], batch_size=args.batch_size)  # warm-up
        started = time.perf_counter()
        xb = extractor.embed(images, batch_size=args.batch_size)
        seconds = time.perf_counter() - started
        results[precision] = xb
        print(
            f"{args.backbone} {extractor.device} {extractor.precision:>5}: "
            f"{len(images) / seconds:6.1f} img/s ({len(images)} photos, batch {args.batch_size})"
        )
    cosine = np.sum(results["fp32"] * results["auto"], axis=1)
    print(f"cosine(auto, fp32): min {cosine.min():.4f}, mean {cosine.mean():.4f}")


if __name__ == "__main__":
    main()
