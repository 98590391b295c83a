"""Photos: recognised by content, re-encoded without metadata, stored outside static/.

A resident's phone photo carries the GPS position of their home in its EXIF data;
re-encoding drops it, turns the picture upright, and defeats files that only look
like images. Files are written before the ticket's transaction commits and removed
again if it does not, so a failed request leaves nothing on disk.
"""
from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

from ticketing.services.errors import Busy, InvalidInput, PayloadTooLarge, ServiceError

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
MAX_SIDE = 2560
# Pixel limits, read from the file's header before anything is decoded. A file of a
# few hundred KB can declare 40 MP and cost 160 MB and seconds of CPU to decode.
# A single-scan JPEG (what phone cameras write) is decoded at 1/2, 1/4 or 1/8 scale
# when it is larger than needed (libjpeg's DCT scaling, `Image.draft`), so its memory
# follows MAX_SIDE rather than its size: 64 MP admits the full-resolution shots of 50 and
# 64 MP phone cameras (9248x6936). PNG, WebP and progressive JPEGs are decoded whole
# (libjpeg keeps every coefficient of a progressive file and passes over them once
# per scan), so they stop at 16 MP (4096x4096, 64 MB as RGBA): screenshots are below
# 6 MP, a 5K screen is 14.7 MP, and camera photos come as JPEG.
MAX_JPEG_PIXELS = 64 * 1024 * 1024
MAX_FULL_DECODE_PIXELS = 16 * 1024 * 1024
# Encoders write 1 scan (baseline) or about 10 (progressive); a crafted file of
# thousands of tiny scans makes libjpeg sweep the whole image thousands of times.
MAX_JPEG_SCANS = 32
# How long a photo waits for a decode slot before the request is answered 503.
DECODE_WAIT_SECONDS = 5.0

NOT_AN_IMAGE = _l("Photos must be JPEG, PNG or WebP images.")
TOO_MANY_PIXELS = _l("This photo has too many pixels. Please send a smaller one.")


@dataclass(frozen=True)
class CleanPhoto:
    """A checked and re-encoded photo, ready to store."""

    data: bytes
    content_type: str
    extension: str


class DecodeSlots:
    """At most `at_once` photos decoded at a time; the others wait up to `wait` seconds.

    Decoding is what takes memory, and memory is the process's: gunicorn's threads
    (and the threaded development server) share it, so the bound is per process.
    """

    def __init__(self, at_once: int, wait: float = DECODE_WAIT_SECONDS) -> None:
        self._free = threading.BoundedSemaphore(at_once)
        self.wait = wait

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold one slot for the block; `Busy` (503) when none frees up in time."""
        if not self._free.acquire(timeout=self.wait):
            raise Busy(_l("The server is busy with other photos. Please try again in a minute."),
                       field="photos")
        try:
            yield
        finally:
            self._free.release()


_decodes = DecodeSlots(2)


def limit_decodes(at_once: int) -> None:
    """Set how many photos this process decodes at once (PHOTO_DECODES_AT_ONCE)."""
    global _decodes
    _decodes = DecodeSlots(at_once)


def clean_photo(data: bytes, max_bytes: int, slots: DecodeSlots | None = None) -> CleanPhoto:
    """Check that `data` is a JPEG, PNG or WebP image within the limits; re-encode it.

    Everything that can be judged from the header is judged before any pixel is
    decoded; decoding then waits for one of the process's `slots`.
    """
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            _l("Each photo may be at most %(mb)d MB.", mb=max_bytes // (1024 * 1024) or 1),
            field="photos",
        )
    if not data:
        raise InvalidInput(_l("The photo is empty."), field="photos")
    try:
        # `formats` keeps every other Pillow parser away from the upload.
        with Image.open(io.BytesIO(data), formats=tuple(FORMATS)) as probe:
            kind = str(probe.format)
            check_pixels(probe, data)
            probe.verify()
        with (slots or _decodes).held(), Image.open(io.BytesIO(data), formats=tuple(FORMATS)) as image:
            out = reencode(image, kind)
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own limits (89 MP warns, 179 MP fails, while opening) are above ours;
        # the warning arrives as an exception only when warnings are made errors.
        raise PayloadTooLarge(TOO_MANY_PIXELS, field="photos") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInput(NOT_AN_IMAGE, field="photos") from None
    content_type, extension = FORMATS[kind]
    return CleanPhoto(out, content_type, extension)


def check_pixels(image: Image.Image, data: bytes) -> None:
    """Refuse, from the header alone, a photo that would cost too much to decode."""
    limit = MAX_FULL_DECODE_PIXELS
    if image.format == "JPEG":
        scans = jpeg_scans(data)
        if scans > MAX_JPEG_SCANS:
            raise InvalidInput(NOT_AN_IMAGE, field="photos")
        if scans == 1:
            limit = MAX_JPEG_PIXELS
    if image.width * image.height > limit:
        raise PayloadTooLarge(TOO_MANY_PIXELS, field="photos")


def jpeg_scans(data: bytes) -> int:
    """How many scans (SOS segments) a JPEG holds, counting at most MAX_JPEG_SCANS + 1.

    Segments with a length (EXIF, which may hold a thumbnail JPEG, ICC, tables) are
    skipped whole; inside the compressed data 0xFF is always followed by 0x00 or a
    restart marker, so the next other marker is the next segment.
    """
    scans, at = 0, 2  # after the SOI marker
    while (at := data.find(b"\xff", at)) != -1 and at + 1 < len(data) and scans <= MAX_JPEG_SCANS:
        marker = data[at + 1]
        if marker == 0xD9:  # end of image
            break
        if marker == 0xFF:  # fill byte before a marker
            at += 1
        elif marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD8:  # stuffed byte, stand-alone markers
            at += 2
        else:  # a segment with a length; SOS starts a scan
            scans += 1 if marker == 0xDA else 0
            at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return scans


def reencode(image: Image.Image, kind: str) -> bytes:
    """The first frame of `image`, at most MAX_SIDE wide and high, upright, without metadata."""
    if kind == "JPEG":
        # Asks libjpeg for the smallest of 1/1, 1/2, 1/4, 1/8 scale still at least the
        # final size: a 48 MP photo costs a 12 MP decode, a 64 MP one at most 16 MP.
        ratio = MAX_SIDE / max(image.size)
        if ratio < 1:
            image.draft(None, (max(1, int(image.width * ratio)), max(1, int(image.height * ratio))))
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    # Turned after shrinking, which is the same picture for a fraction of the work;
    # only the first frame of an animated PNG or WebP is loaded and kept.
    upright = ImageOps.exif_transpose(image)
    out = io.BytesIO()
    if kind == "JPEG":
        upright.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    elif kind == "PNG":
        # zlib's fast levels: at level 9 (optimize) a 2560x2560 PNG of fine detail
        # takes over 2 s to write, at level 2 a quarter of that; screenshots grow ~35%.
        upright.save(out, "PNG", compress_level=2)
    else:
        upright.save(out, "WEBP", quality=85)
    return out.getvalue()


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
