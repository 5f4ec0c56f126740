"""Uploaded ZIPs and photo folders, opened safely and read without extracting anything."""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from embeddings.images import human_size


class ImportRejected(ValueError):
    """An upload that cannot be imported at all; the message says what to do."""


class ImageMissing(LookupError):
    """A row names a photo that is not among the uploaded files."""


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_total_bytes: int
    max_ratio: int


# Below this size a high compression ratio is harmless (a few KB of spaces compress 300:1);
# the total-size limit still bounds many small entries.
RATIO_FLOOR_BYTES = 1_000_000
ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh")
ARCHIVE_SUFFIXES = (".zip", ".jar", ".gz", ".tgz", ".tar", ".7z", ".rar", ".bz2", ".xz")
# Files that archivers and desktops add next to the real ones.
JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$|\._)")
SPLIT_HINT = "Split the photos into smaller ZIPs and import them one after another."


def check_zip(archive: zipfile.ZipFile, limits: ZipLimits) -> None:
    """Refuse a ZIP that could write outside its folder or expand into a bomb."""
    entries = archive.infolist()
    if len(entries) > limits.max_entries:
        raise ImportRejected(
            f"The ZIP holds {len(entries):,} entries; the limit is {limits.max_entries:,}. "
            f"{SPLIT_HINT}"
        )
    total = 0
    for entry in entries:
        _check_entry(archive, entry, limits)
        total += entry.file_size
    if total > limits.max_total_bytes:
        raise ImportRejected(
            f"The ZIP expands to {human_size(total)}; the limit is "
            f"{human_size(limits.max_total_bytes)}. {SPLIT_HINT}"
        )


def _check_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limits: ZipLimits) -> None:
    name = entry.filename
    parts = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ImportRejected(
            f"The ZIP entry {name!r} has an absolute path. Make the ZIP from inside the "
            "folder that holds the CSV and photos, so every entry has a relative name."
        )
    if ".." in parts:
        raise ImportRejected(
            f"The ZIP entry {name!r} points outside the ZIP's folder ('..'). Remove it and "
            "make the ZIP again."
        )
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise ImportRejected(
            f"The ZIP entry {name!r} is a symbolic link. Put the photo itself in the ZIP."
        )
    if entry.flag_bits & 0x1:
        raise ImportRejected(
            f"The ZIP entry {name!r} is password-protected. Make the ZIP again without a password."
        )
    if entry.is_dir():
        return
    ratio = entry.file_size / max(entry.compress_size, 1)
    if entry.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_ratio:
        raise ImportRejected(
            f"The ZIP entry {name!r} expands {ratio:,.0f} times (the limit is "
            f"{limits.max_ratio}:1), which is how ZIP bombs look. Photos and CSV files "
            "never compress that much; make the ZIP again from the original files."
        )
    if name.lower().endswith(ARCHIVE_SUFFIXES) or _starts_like_archive(archive, entry):
        raise ImportRejected(
            f"The ZIP entry {name!r} is itself an archive. Put the CSV and photos directly "
            "in one ZIP, not a ZIP inside a ZIP."
        )


def _starts_like_archive(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bool:
    try:
        with archive.open(entry) as handle:
            head = handle.read(4)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as exc:
        raise ImportRejected(
            f"The ZIP entry {entry.filename!r} cannot be read ({exc}). Make the ZIP again."
        ) from None
    return head.startswith(ARCHIVE_MAGIC)


@contextmanager
def open_zip(source: str | Path | IO[bytes], limits: ZipLimits) -> Iterator[zipfile.ZipFile]:
    """A checked ZipFile (see check_zip), closed on exit."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise ImportRejected(
            f"This file is not a ZIP we can read ({exc}). Make the ZIP again, or upload "
            "the CSV and the photos separately."
        ) from None
    with archive:
        check_zip(archive, limits)
        yield archive


def is_junk(name: str) -> bool:
    """Whether a file is one that archivers or desktops add (not part of the catalog)."""
    return bool(JUNK.search(name.replace("\\", "/")))


def csv_entries(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The CSV files in a ZIP (junk left out)."""
    return [
        entry
        for entry in archive.infolist()
        if entry.filename.lower().endswith(".csv") and not is_junk(entry.filename)
    ]


class PhotoSource(Protocol):
    """Photos a catalog's rows can name: a ZIP or a folder."""

    description: str
    index: NameIndex

    def names(self) -> list[str]: ...

    def read(self, name: str, max_bytes: int) -> bytes: ...


class NameIndex:
    """Finds a file by the name a row gives: its path, or its file name alone if unique."""

    def __init__(self, paths: list[str]) -> None:
        self.by_path: dict[str, str] = {}
        self.by_name: dict[str, str | None] = {}
        for path in paths:
            key = path.replace("\\", "/").lower()
            self.by_path[key] = path
            base = key.rsplit("/", 1)[-1]
            # None marks a file name found in several folders: only its path will do.
            self.by_name[base] = None if base in self.by_name else path

    def find(self, wanted: str) -> str:
        """The stored path for a name in a row, or ImageMissing saying why."""
        key = wanted.strip().replace("\\", "/").lower().removeprefix("./")
        if key in self.by_path:
            return self.by_path[key]
        base = key.rsplit("/", 1)[-1]
        if base in self.by_name:
            if self.by_name[base] is None:
                raise ImageMissing(
                    f"several files are named {base!r}; give the photo's path inside the ZIP"
                )
            return self.by_name[base]
        raise ImageMissing(f"{wanted!r} is not among the {len(self.by_path):,} uploaded photos")


class ZipPhotos:
    """Photos read straight from a checked ZIP, one entry at a time, never extracted."""

    def __init__(self, archive: zipfile.ZipFile, exclude: set[str] = frozenset()) -> None:
        self.archive = archive
        self.description = "the ZIP"
        self.entries = {
            entry.filename: entry
            for entry in archive.infolist()
            if not entry.is_dir() and not is_junk(entry.filename) and entry.filename not in exclude
        }
        self.index = NameIndex(list(self.entries))

    def names(self) -> list[str]:
        return sorted(self.entries)

    def read(self, name: str, max_bytes: int) -> bytes:
        entry = self.entries[self.index.find(name)]
        try:
            with self.archive.open(entry) as handle:
                # One byte over the limit is enough to tell the decoder the file is too big.
                return handle.read(max_bytes + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ImageMissing(f"{entry.filename!r} is damaged in the ZIP ({exc})") from None


class FolderPhotos:
    """Photos in a folder; only files listed from the folder are opened, never a row's path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"the folder {root}"
        self.files = dict(_plain_files(root))
        self.index = NameIndex(list(self.files))

    def names(self) -> list[str]:
        return sorted(self.files)

    def read(self, name: str, max_bytes: int) -> bytes:
        with open(self.files[self.index.find(name)], "rb") as handle:
            return handle.read(max_bytes + 1)


def _plain_files(root: Path) -> Iterator[tuple[str, Path]]:
    # A link could point anywhere on the machine: only plain files inside the folder count,
    # and os.walk does not follow links to folders.
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            path = Path(folder) / name
            if not path.is_symlink() and path.is_file() and not is_junk(name):
                yield path.relative_to(root).as_posix(), path


def safe_file_name(name: str) -> str:
    """A browser-sent file name reduced to a plain name to store in a job's folder."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .")
    return cleaned[:120] or "photo"
