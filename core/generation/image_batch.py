"""Many uploaded files (images and zips of images) -> CaptionItems, each image checked, each refusal explained."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from core.config import LimitsConfig
from core.errors import BadFileError, EmptyInputError
from core.generation.batch_caption import CaptionItem
from core.generation.images import load_image

_SKIPPED_PREFIXES = ("__MACOSX/", ".")  # macOS resource forks and hidden files inside zips


def collect_items(paths: Sequence[str | os.PathLike[str]], limits: LimitsConfig) -> list[CaptionItem]:
    """Load every image (zips expanded) in upload order; files past limits.max_batch_images are refused."""
    if not paths:
        raise EmptyInputError("Add images first: upload several images or a zip of images.")
    items: list[CaptionItem] = []
    for path in paths:
        path = Path(path)
        if zipfile.is_zipfile(path):
            items += _zip_items(path, limits)
        else:
            items.append(_item(path.name, path, limits))
    return _cap(items, limits.max_batch_images)


def _item(name: str, path: Path, limits: LimitsConfig) -> CaptionItem:
    try:
        prepared = load_image(path, limits)
    except (BadFileError, EmptyInputError) as exc:
        return CaptionItem(name, error=str(exc).replace(path.name, name))
    return CaptionItem(name, prepared.image, notices=prepared.notices)


def _cap(items: list[CaptionItem], limit: int) -> list[CaptionItem]:
    """Refuse the images beyond the limit, keeping earlier refusals' own messages."""
    kept, count = [], 0
    for item in items:
        if item.image is not None:
            count += 1
            if count > limit:
                item = CaptionItem(item.name, error=f"Not captioned: at most {limit} images per batch.")
        kept.append(item)
    return kept


def _zip_items(path: Path, limits: LimitsConfig) -> list[CaptionItem]:
    """The zip's images, after refusing the whole zip from its headers if it would unpack too large."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith(_SKIPPED_PREFIXES)]
            refusal = _zip_refusal(path.name, members, limits)
            if refusal:
                return [CaptionItem(path.name, error=refusal)]
            with tempfile.TemporaryDirectory(prefix="caption-zip-") as folder:
                return [_member_item(archive, member, Path(folder), limits) for member in members]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return [CaptionItem(path.name, error=f"{path.name} is not a readable zip archive ({exc}).")]


def _zip_refusal(name: str, members: list[zipfile.ZipInfo], limits: LimitsConfig) -> str:
    total = sum(m.file_size for m in members)  # declared uncompressed sizes: nothing is unpacked yet
    if len(members) > limits.max_zip_files:
        return f"{name} holds {len(members):,} files; zips of up to {limits.max_zip_files:,} files are accepted."
    if total > limits.max_zip_bytes:
        return (f"{name} would unpack to {total / 1e6:,.0f} MB (a zip bomb?); zips up to "
                f"{limits.max_zip_bytes / 1e6:,.0f} MB uncompressed are accepted.")
    if not members:
        return f"{name} holds no files."
    return ""


def _member_item(archive: zipfile.ZipFile, member: zipfile.ZipInfo, folder: Path,
                 limits: LimitsConfig) -> CaptionItem:
    """One zip member, unpacked under a safe name and read no further than the image byte limit."""
    name = member.filename
    if member.file_size > limits.max_image_bytes:
        return CaptionItem(name, error=f"{name} is {member.file_size / 1e6:.1f} MB; images up to "
                                       f"{limits.max_image_bytes / 1e6:.0f} MB are accepted.")
    target = folder / f"{len(list(folder.iterdir()))}{PurePosixPath(name).suffix[:10]}"  # never the member's path
    try:
        with archive.open(member) as source:
            data = source.read(limits.max_image_bytes + 1)  # a lying header cannot make this read more
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        return CaptionItem(name, error=f"{name} cannot be unpacked ({exc}).")
    if len(data) > limits.max_image_bytes:
        return CaptionItem(name, error=f"{name} is larger than its zip header says; refused.")
    target.write_bytes(data)
    return _item(name, target, limits)
