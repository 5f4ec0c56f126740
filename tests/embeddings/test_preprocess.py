"""Product-photo preprocessing keeps the whole product, upright, on white."""

from __future__ import annotations

from PIL import Image

from embeddings.preprocess import letterbox, prepare, to_rgb
from embeddings.registry import get_backbone


def test_letterbox_pads_to_a_square_without_cropping() -> None:
    # given a wide red photo
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    # when
    square = letterbox(image)
    # then the photo is whole, centred, with white bands above and below
    assert square.size == (200, 200)
    assert square.getpixel((100, 100)) == (255, 0, 0)
    assert square.getpixel((100, 10)) == (255, 255, 255)
    assert square.getpixel((100, 190)) == (255, 255, 255)
    assert square.getpixel((0, 51)) == (255, 0, 0)


def test_transparency_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image.putpixel((5, 5), (0, 0, 255, 255))
    flat = to_rgb(image)
    assert flat.mode == "RGB"
    assert flat.getpixel((0, 0)) == (255, 255, 255)
    assert flat.getpixel((5, 5)) == (0, 0, 255)


def test_exif_orientation_is_applied() -> None:
    # given a landscape photo whose EXIF says "rotate 90 degrees" (orientation 6)
    image = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.info["exif"] = exif.tobytes()
    image.getexif()[0x0112] = 6
    # when
    upright = to_rgb(image)
    # then it is shown as portrait
    assert upright.size == (20, 40)


def test_the_backbone_entry_carries_its_own_preprocessing() -> None:
    backbone = get_backbone("efficientnet_lite0")
    tensor = backbone.transforms()(Image.new("RGB", (300, 120), (255, 255, 255)))
    assert tuple(tensor.shape) == (3, 224, 224)
    # white maps to (1 - mean) / std for this entry's normalisation
    expected = (1 - backbone.mean[0]) / backbone.std[0]
    assert abs(float(tensor[0, 0, 0]) - expected) < 1e-3
    assert prepare(Image.new("RGB", (300, 120))).size == (300, 300)
