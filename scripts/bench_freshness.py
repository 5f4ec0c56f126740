"""Freshness: seconds from a product's save to its appearance in another product's similar items.

Runs the real pipeline on this machine: a separate `celery worker` process consuming from the
local Redis embeds the new photo and writes a new index version; this process plays the web
process, which picks the new version up on its next manifest check. Everything lives in a
temporary folder; the shop's own database and index are not touched.

Usage: python scripts/bench_freshness.py [--runs 20] [--catalog 60] [--broker redis://127.0.0.1:6379/6]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def configure(var_dir: Path, broker: str) -> dict[str, str]:
    """Environment shared by this process and the worker."""
    env = {
        "LOOKALIKE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'bench.sqlite3'}",
        "CELERY_BROKER_URL": broker,
        "CELERY_BROKER_KEY_PREFIX": f"lookalike-bench-{os.getpid()}:",
        "LOOKALIKE_BACKBONE": os.environ.get("LOOKALIKE_BACKBONE", "efficientnet_lite0"),
        "LOOKALIKE_WEIGHTS_DOWNLOAD": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    return {**os.environ, **env}


def marked_photo(path: str, number: int) -> Image.Image:
    """The photo with a small mark, so its content hash (and so its embedding) is new."""
    image = Image.open(path).convert("RGB")
    ImageDraw.Draw(image).rectangle((0, 0, 3, 3), fill=(number % 256, 7, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return Image.open(io.BytesIO(buffer.getvalue()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--catalog", type=int, default=60, help="products in the shop")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lookalike-freshness-") as tmp:
        env = configure(Path(tmp), args.broker)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from recommender.services import index_rebuild, products_embed, similar_to_product
        from shop.models import Product
        from shop.services import demo_catalog_load, merchant_get_or_create, product_create
        from tests.conftest import pick_rows, write_catalog

        call_command("migrate", verbosity=0)
        per_category = max(1, args.catalog // 8)
        ids = demo_catalog_load(write_catalog(Path(tmp) / "catalog", pick_rows(per_category)))
        products_embed(ids)
        index_rebuild()
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker",
             "-Q", "default,embedding", "-c", "1", "-l", "warning"],
            cwd=REPO, env=env,
        )  # fmt: skip
        try:
            seconds = measure(args.runs, ids, settings, Product, similar_to_product,
                              product_create, merchant_get_or_create)  # fmt: skip
        finally:
            worker.terminate()
            worker.wait(30)
    median = statistics.median(seconds)
    print(f"\nFreshness over {len(seconds)} saves, {len(ids)}-product catalog, one worker:")
    print(f"  median {median:.2f} s   min {min(seconds):.2f} s   max {max(seconds):.2f} s")
    print(f"  web process index check interval: {settings.LOOKALIKE_INDEX_CHECK_INTERVAL} s")


def measure(runs, ids, settings, Product, similar_to_product, product_create, merchant):
    from shop.services import DEMO_MERCHANT

    seller = merchant(*DEMO_MERCHANT)
    sources = list(Product.objects.filter(pk__in=ids, stock__gt=0)[:runs])
    similar_to_product(sources[0].pk, 5)  # warm the web side: model and index loaded
    seconds = []
    for number, source in enumerate(sources):
        photo = marked_photo(str(Path(settings.MEDIA_ROOT) / source.image), number)
        started = time.perf_counter()
        new = product_create(
            merchant=seller, photo=photo, sku=f"FRESH-{number}", title=f"Fresh {number}",
            description="", category=source.category, price=source.price, currency="EUR",
            stock=1,
        )  # fmt: skip
        deadline = started + 120
        while time.perf_counter() < deadline:
            found = [i.product.pk for i in similar_to_product(source.pk, 3).items]
            if new.pk in found:
                break
            time.sleep(0.02)
        else:
            raise SystemExit(f"product {new.pk} did not appear within 120 s")
        seconds.append(time.perf_counter() - started)
        print(f"  save {number + 1:2d}: {seconds[-1]:.2f} s", flush=True)
    return seconds


if __name__ == "__main__":
    main()
