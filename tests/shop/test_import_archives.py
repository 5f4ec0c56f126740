"""Uploaded ZIPs: hostile ones are refused before anything is read or written."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from shop.imports.archives import (
    FolderPhotos,
    ImageMissing,
    ImportRejected,
    ZipLimits,
    ZipPhotos,
    open_zip,
    safe_file_name,
)
from tests.shop.catalogfiles import csv_bytes, photos, row, zip_bytes

LIMITS = ZipLimits(max_entries=50, max_total_bytes=20_000_000, max_ratio=100)
GOOD = photos("a.jpg")


def hostile_zips() -> list:
    """(ZIP bytes, words the refusal must contain) for ZIPs that must be refused."""
    inner = zip_bytes(GOOD)
    cases = [
        ("dot-dot", zip_bytes({**GOOD, "../evil.jpg": GOOD["a.jpg"]}), "outside the ZIP"),
        ("deep-dot-dot", zip_bytes({"images/../../evil.jpg": b"x"}), "outside the ZIP"),
        ("backslash-dot-dot", zip_bytes({"..\\evil.jpg": b"x"}), "outside the ZIP"),
        ("absolute", zip_bytes({"/tmp/evil.jpg": b"x"}), "absolute path"),
        ("drive", zip_bytes({"C:\\evil.jpg": b"x"}), "absolute path"),
        ("symlink", zip_bytes(GOOD, symlinks={"b.jpg": "/etc/passwd"}), "symbolic link"),
        ("nested-zip", zip_bytes({**GOOD, "more.zip": inner}), "ZIP inside a ZIP"),
        ("disguised-zip", zip_bytes({**GOOD, "b.jpg": inner}), "ZIP inside a ZIP"),
        ("ratio-bomb", zip_bytes({"a.jpg": b"\0" * 5_000_000}), "ZIP bombs"),
        ("entries", zip_bytes({f"p{i}.jpg": b"x" for i in range(51)}), "51 entries"),
        ("total", zip_bytes({f"p{i}.jpg": bytes(range(256)) * 8000 for i in range(11)}), "expands"),
        ("not-a-zip", b"PK\x03\x04 but not really", "not a ZIP"),
    ]
    return [pytest.param(data, words, id=case) for case, data, words in cases]


@pytest.mark.parametrize(("data", "words"), hostile_zips())
def test_it_refuses_hostile_zips_with_a_clear_error(data, words, tmp_path: Path):
    # given: the ZIP in an import's own folder, inside an otherwise empty tree
    folder = tmp_path / "imports" / "job-1"
    folder.mkdir(parents=True)
    (folder / "images.zip").write_bytes(data)
    # when
    with pytest.raises(ImportRejected) as refused, open_zip(folder / "images.zip", LIMITS):
        pass
    # then: refused, and nothing was written anywhere
    assert words in str(refused.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [folder / "images.zip"]


def test_a_zip_is_read_in_place_by_path_or_file_name():
    data = zip_bytes({"catalog.csv": csv_bytes([row("A1", "a.jpg")]), "img/a.jpg": b"jpeg"})
    with open_zip(io.BytesIO(data), LIMITS) as archive:
        source = ZipPhotos(archive, exclude={"catalog.csv"})
        assert source.names() == ["img/a.jpg"]
        assert source.read("a.jpg", 100) == source.read("IMG/A.JPG", 100) == b"jpeg"
        with pytest.raises(ImageMissing, match="not among the 1 uploaded photos"):
            source.read("../../etc/passwd", 100)
        # Only entries listed from the ZIP are ever opened: a path is just a name to look up.
        assert source.read("../a.jpg", 100) == b"jpeg"


def test_it_reads_at_most_one_byte_over_the_limit():
    with open_zip(io.BytesIO(zip_bytes({"a.jpg": b"x" * 1000})), LIMITS) as archive:
        assert len(ZipPhotos(archive).read("a.jpg", 10)) == 11


def test_a_file_name_in_several_folders_needs_its_path():
    data = zip_bytes({"red/a.jpg": b"r", "blue/a.jpg": b"b"})
    with open_zip(io.BytesIO(data), LIMITS) as archive:
        source = ZipPhotos(archive)
        assert source.read("blue/a.jpg", 10) == b"b"
        with pytest.raises(ImageMissing, match="several files are named 'a.jpg'"):
            source.read("a.jpg", 10)


def test_a_photo_folder_never_follows_links_out_of_it(tmp_path: Path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"secret")
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.jpg").write_bytes(b"a")
    (folder / "link.jpg").symlink_to(secret)
    (folder / "linked-dir").symlink_to(tmp_path)
    source = FolderPhotos(folder)
    assert source.names() == ["sub/a.jpg"]
    for wanted in ("link.jpg", "../secret.jpg", str(secret), "linked-dir/secret.jpg"):
        with pytest.raises(ImageMissing):
            source.read(wanted, 100)


def test_uploaded_file_names_are_reduced_to_plain_names():
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\Users\\me\\Red shoe (1).JPG") == "Red shoe _1_.JPG"
    assert safe_file_name("..") == "photo"


def test_the_ratio_limit_leaves_ordinary_files_alone():
    # A photo barely compresses; a small CSV of repeated rows compresses a lot but is small.
    data = zip_bytes({"a.jpg": GOOD["a.jpg"], "c.csv": b"sku,title\n" + b"x,y\n" * 20_000})
    with open_zip(io.BytesIO(data), LIMITS) as archive:
        assert isinstance(archive, zipfile.ZipFile)
