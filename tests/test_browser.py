"""End-to-end: a shopper's visit in a real (Debian) Chromium, driven by Playwright.

Runs against pytest-django's ``live_server`` with the twelve-product ``small_catalog``
(embedded and indexed with the offline backbone). Writes the README screenshots to
``docs/screenshots/``. Run only these with ``pytest -m browser``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
DEMO_IMAGES = REPO / "demo_catalog" / "images"
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000
SCORE = re.compile(r"^(\d+)% alike$")

# Wait until every <img> on the page has finished (loading="lazy" ones included: each is
# scrolled into view first), then report the ones that failed to decode. An <img> without
# a src (the photo-search preview before a photo is chosen) is not an image to load.
LOAD_IMAGES_JS = """async () => {
  const images = [...document.images].filter((img) => img.getAttribute("src"));
  for (const img of images) {
    img.scrollIntoView({block: "center"});
    await new Promise((r) => requestAnimationFrame(r));
  }
  await Promise.all(images.map((img) => img.complete ? null : new Promise((resolve) => {
    img.addEventListener("load", resolve, {once: true});
    img.addEventListener("error", resolve, {once: true});
  })));
  window.scrollTo(0, 0);
  return images.filter((img) => !img.naturalWidth).map((img) => img.currentSrc || img.src);
}"""

# Drag and drop as the browser would deliver it: a File (built from a catalog thumbnail's
# bytes) inside a DataTransfer, dropped on the drop zone.
DROP_JS = """async ([url, name]) => {
  const blob = await (await fetch(url)).blob();
  const file = new File([blob], name, {type: blob.type || "image/jpeg"});
  const data = new DataTransfer();
  data.items.add(file);
  const zone = document.getElementById("dropzone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data}));
  }
}"""


@pytest.fixture
def browser(monkeypatch):
    """Debian's Chromium, headless; fails (never skips) when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Install it with `apt-get install chromium` (Playwright's own download is not used).",
            pytrace=False,
        )
    # Playwright's sync API drives an asyncio loop (in a greenlet) on this thread, so while it
    # runs Django sees a "running event loop" and refuses ORM calls made here (the test's own
    # queries, the transactional_db flush at teardown) with SynchronousOnlyOperation. Nothing
    # here runs concurrently with that loop: it only runs while a Playwright call blocks.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _new_page(browser, **context_options):
    context = browser.new_context(**context_options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def _screenshot(page, name: str, *, full_page: bool = True) -> None:
    broken = page.evaluate(LOAD_IMAGES_JS)
    assert not broken, f"images that did not load on {page.url}: {broken}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page, animations="disabled")


def _card_ids(cards) -> list[int]:
    return [int(pk) for pk in cards.evaluate_all("els => els.map(e => e.dataset.productId)")]


def _scores(cards) -> list[int]:
    texts = cards.locator(".score").all_inner_texts()
    assert len(texts) == cards.count(), "every result card shows a '% alike' score"
    percents = []
    for text in texts:
        match = SCORE.match(text.strip())
        assert match, f"unexpected score label {text!r}"
        percents.append(int(match.group(1)))
    return percents


def _price(product) -> str:
    return f"€{product.price}"


def test_shopper_journey(browser, live_server, small_catalog, tmp_path):
    """Catalog -> category -> product + rail -> search by click -> search by photo -> errors."""
    from playwright.sync_api import expect

    by_id = {p.pk: p for p in small_catalog}
    boots = {p.pk for p in small_catalog if p.category.slug == "boots"}
    assert len(small_catalog) == 12 and len(boots) == 3
    page, js_errors = _new_page(browser, viewport=DESKTOP)

    # 1. The catalog: all twelve products; the Boots pill narrows it to the three boots.
    page.goto(live_server.url + "/")
    grid = page.get_by_test_id("catalog-grid")
    cards = grid.locator("article.card")
    expect(cards).to_have_count(12)
    expect(page.locator("main h1")).to_have_text("All shoes")
    assert set(_card_ids(cards)) == set(by_id)
    for product in small_catalog:
        card = grid.locator(f'article[data-product-id="{product.pk}"]')
        expect(card.locator("a.title")).to_have_text(product.title)
        expect(card.locator(".price")).to_have_text(_price(product))
    _screenshot(page, "catalog.png")

    nav = page.get_by_role("navigation", name="Categories")
    nav.get_by_role("link", name=re.compile(r"^Boots\b")).click()
    expect(page).to_have_url(re.compile(r"[?&]category=boots\b"))
    expect(cards).to_have_count(3)
    assert set(_card_ids(cards)) == boots
    expect(page.locator("main h1")).to_have_text("Boots")
    expect(nav.locator("a.active")).to_contain_text("Boots")

    # 2. A product page (a sneaker, reached by clicking its title): title, price, and a
    #    "Visually similar" rail of the other products, best first, each with its score.
    nav.get_by_role("link", name="All", exact=True).click()
    expect(cards).to_have_count(12)
    product = next(p for p in small_catalog if p.category.slug == "sneakers")
    grid.get_by_role("link", name=product.title, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/products/{product.pk}/$"))
    expect(page.locator(".product-info h1")).to_have_text(product.title)
    expect(page.locator(".big-price")).to_have_text(_price(product))
    expect(page.get_by_role("heading", name="Visually similar")).to_be_visible()
    rail_cards = page.get_by_test_id("similar-rail").locator("article.card")
    expect(rail_cards.first).to_be_visible()
    rail_ids = _card_ids(rail_cards)
    assert 1 <= len(rail_ids) <= 11
    assert product.pk not in rail_ids, "the product itself is not in its own rail"
    assert set(rail_ids) <= set(by_id) and len(set(rail_ids)) == len(rail_ids)
    percents = _scores(rail_cards)
    assert percents == sorted(percents, reverse=True), "the rail is best match first"
    assert all(0 <= p <= 100 for p in percents)
    _screenshot(page, "product.png")

    # 3. Search by click: the first photo in the rail opens that product's look-alikes.
    pivot = by_id[rail_ids[0]]
    rail_cards.first.locator("a.photo").click()
    expect(page).to_have_url(re.compile(rf"/products/{pivot.pk}/similar/$"))
    expect(page.locator("section.query h1")).to_have_text(pivot.title)
    similar_cards = page.get_by_test_id("similar-results").locator("article.card")
    expect(similar_cards.first).to_be_visible()
    similar_ids = _card_ids(similar_cards)
    assert pivot.pk not in similar_ids and set(similar_ids) <= set(by_id)
    assert len(similar_ids) == 11, "every other (in-stock) product is listed"
    _scores(similar_cards)
    _screenshot(page, "similar.png")

    # 4. Search by photo with a catalog product's own photo: that product comes first.
    target = next(p for p in small_catalog if p.category.slug == "heels")
    photo = DEMO_IMAGES / f"{target.sku}.jpg"  # the manifest names each image after its SKU
    assert photo.is_file(), photo
    page.get_by_test_id("photo-search-link").click()
    expect(page).to_have_url(re.compile(r"/search/photo/$"))
    expect(page.get_by_role("heading", name="Search by photo")).to_be_visible()
    # The heading shows before the page's script has run; a photo chosen earlier gets no preview.
    page.wait_for_load_state("load")
    page.set_input_files("#id_photo", str(photo))
    expect(page.locator("#preview")).to_be_visible()  # the JS preview of the chosen photo
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/search/photo/")
    ) as answer:
        page.locator("#search-button").click()
    assert answer.value.status == 200
    expect(page.get_by_test_id("query-photo").locator("img")).to_have_attribute(
        "src", re.compile(r"^data:image/jpeg;base64,")
    )
    results = page.get_by_test_id("photo-results").locator("article.card")
    expect(results.first).to_be_visible()
    result_ids = _card_ids(results)
    assert result_ids[0] == target.pk, (
        f"uploading {photo.name} should find {target.title} first, got {by_id[result_ids[0]]}"
    )
    assert len(result_ids) == 12
    cosine = results.first.locator(".score").get_attribute("title")
    assert float(re.search(r"cosine ([\d.]+)", cosine).group(1)) >= 0.98, cosine
    assert _scores(results)[0] >= 98
    expect(results.first.locator("a.title")).to_have_text(target.title)
    _screenshot(page, "photo-search.png")

    # 5. Not a photo: a 400 answer and an error naming the accepted formats.
    not_a_photo = tmp_path / "notes.txt"
    not_a_photo.write_text("these are not the shoes you are looking for\n")
    page.set_input_files("#id_photo", str(not_a_photo))
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/search/photo/")
    ) as answer:
        page.locator("#search-button").click()
    assert answer.value.status == 400
    error = page.get_by_test_id("upload-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("JPEG")
    expect(page.get_by_test_id("photo-results")).to_have_count(0)
    expect(page.locator("#search-button")).to_be_enabled()

    # Drag and drop: a File dropped on the drop zone is put in the form and searched.
    page.get_by_test_id("photo-search-link").click()
    dropped = by_id[result_ids[1]]
    with page.expect_navigation():
        page.evaluate(DROP_JS, [dropped.thumbnail_url, "dropped.jpg"])
    expect(page.get_by_test_id("query-photo")).to_be_visible()
    dropped_results = page.get_by_test_id("photo-results").locator("article.card")
    expect(dropped_results.first).to_be_visible()
    assert _card_ids(dropped_results)[0] == dropped.pk

    assert not js_errors, js_errors

    # 6. A phone: the product page is one column, its photo as wide as the screen.
    phone, phone_errors = _new_page(
        browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    phone.goto(f"{live_server.url}/products/{product.pk}/")
    photo_box = phone.locator(".product-photo img").bounding_box()
    info_box = phone.locator(".product-info").bounding_box()
    assert photo_box["width"] >= PHONE["width"] - 40, photo_box
    assert info_box["y"] >= photo_box["y"] + photo_box["height"], "info is below the photo"
    assert abs(info_box["x"] - photo_box["x"]) < 2
    scroll_width = phone.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"the page scrolls sideways ({scroll_width}px)"
    expect(phone.get_by_test_id("similar-rail").locator("article.card").first).to_be_visible()
    # The first screen only: the whole page at 2x is a ~6000 px tall, multi-MB picture.
    _screenshot(phone, "product-mobile.png", full_page=False)
    assert not phone_errors, phone_errors


def test_merchant_imports_a_catalog(browser, live_server, small_catalog, tmp_path, worker):
    """Sign in -> upload a CSV + ZIP -> the progress bar reaches 100 % -> products in the shop.

    The import job and the embedding run in a real Celery worker fed through Redis, so the
    page's bar moves while the worker works.
    """
    import zipfile

    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from tests.conftest import pick_rows
    from tests.shop.catalogfiles import csv_bytes, row

    # given: the shop's merchant with a sign-in, and a catalog of five new shoes (photos
    # from the demo catalog that the shop does not sell yet) plus one row with a bad category
    merchant = small_catalog[0].merchant
    merchant.user = get_user_model().objects.create_user("merchant", password="lookalike-demo")
    merchant.save()
    selling = {p.sku for p in small_catalog}
    new = [r for r in pick_rows(6, ("sneakers", "boots")) if r["sku"] not in selling][:5]
    assert len(new) == 5
    lines = [row(r["sku"], r["image"], title=r["title"], category=r["category"]) for r in new]
    lines.append(row("LK-NEW-9", new[0]["image"], category="Wellies"))
    (tmp_path / "catalog.csv").write_bytes(csv_bytes(lines))
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        for r in new:
            archive.write(DEMO_IMAGES / r["image"], f"photos/{r['image']}")
    page, js_errors = _new_page(browser, viewport=DESKTOP)

    # 1. Sign in and open the import page from the merchant menu.
    page.goto(live_server.url + "/merchant/")
    page.get_by_label("Username").fill("merchant")
    page.get_by_label("Password").fill("lookalike-demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your catalog")).to_be_visible()
    page.get_by_test_id("import-link").click()
    expect(page.get_by_role("heading", name="Import a catalog")).to_be_visible()

    # 2. Upload the CSV and the ZIP; the job page's bar is kept current by polling.
    page.set_input_files("#id_csv_file", str(tmp_path / "catalog.csv"))
    page.set_input_files("#id_zip_file", str(tmp_path / "photos.zip"))
    with page.expect_response(lambda r: r.url.endswith("/status/")) as status:
        page.get_by_test_id("import-button").click()
    expect(page).to_have_url(re.compile(r"/merchant/imports/\d+/$"))
    assert status.value.ok
    bar = page.get_by_test_id("import-progress")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=60_000)
    expect(page.locator("[data-field=percent]")).to_have_text("100 %")
    expect(page.locator("[data-field=photos_embedded]")).to_have_text("5")
    expect(page.locator("[data-field=products_created]")).to_have_text("5")
    expect(page.get_by_test_id("rows-failed")).to_have_text("1")
    failures = page.get_by_test_id("failure-rows").locator("tr")
    expect(failures).to_have_count(1)
    expect(failures.first).to_contain_text("unknown category 'Wellies'")
    _screenshot(page, "import.png")

    # 3. The new shoes are in the shop, each with look-alikes.
    page.goto(live_server.url + "/")
    grid = page.get_by_test_id("catalog-grid")
    expect(grid.locator("article.card")).to_have_count(12 + 5)
    for r in new:
        expect(grid.get_by_role("link", name=r["title"], exact=True)).to_be_visible()
    grid.get_by_role("link", name=new[0]["title"], exact=True).click()
    expect(page.get_by_test_id("similar-rail").locator("article.card").first).to_be_visible()
    assert not js_errors, js_errors
