"""Photos: recognised by content, re-encoded without metadata, stored outside static/.

A resident's phone photo carries the GPS position of their home in its EXIF data;
re-encoding drops it, turns the picture upright, and defeats files that only look
like images. Files are written before the ticket's transaction commits and removed
again if it does not, so a failed request leaves nothing on disk.
"""
from __future__ import annotations

import io
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

from ticketing.services.errors import InvalidInput, PayloadTooLarge

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
MAX_PIXELS = 40_000_000
MAX_SIDE = 2560


@dataclass(frozen=True)
class CleanPhoto:
    """A checked and re-encoded photo, ready to store."""

    data: bytes
    content_type: str
    extension: str


def clean_photo(data: bytes, max_bytes: int) -> CleanPhoto:
    """Check that `data` is a JPEG, PNG or WebP image within the size limit."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            _l("Each photo may be at most %(mb)d MB.", mb=max_bytes // (1024 * 1024) or 1),
            field="photos",
        )
    if not data:
        raise InvalidInput(_l("The photo is empty."), field="photos")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            if kind not in FORMATS or probe.width * probe.height > MAX_PIXELS:
                raise InvalidInput(_l("Photos must be JPEG, PNG or WebP images."), field="photos")
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            if kind == "JPEG":
                upright.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
            elif kind == "PNG":
                upright.save(out, "PNG", optimize=True)
            else:
                upright.save(out, "WEBP", quality=85)
    except InvalidInput:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidInput(_l("Photos must be JPEG, PNG or WebP images."), field="photos") from None
    content_type, extension = FORMATS[kind]
    return CleanPhoto(out.getvalue(), content_type, extension)


class PhotoStore:
    """Photo files under one root folder, named by a random key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file of a key; refuses keys that would leave the root."""
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise InvalidInput("bad photo key")
        return path

    def write(self, photo: CleanPhoto, now: datetime) -> str:
        """Write the photo and return its key."""
        key = f"{now:%Y/%m}/{uuid.uuid4().hex}.{photo.extension}"
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(photo.data)
        os.replace(tmp, path)
        return key

    def delete(self, key: str) -> None:
        """Remove a photo file if it exists."""
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            pass

    @contextmanager
    def staged(self) -> Iterator[list[str]]:
        """Collect the keys written inside the block; remove them all if it fails."""
        written: list[str] = []
        try:
            yield written
        except BaseException:
            for key in written:
                self.delete(key)
            raise
