"""Photo cleaning: what is refused from the header alone, what large photos cost, decodes at once."""
from __future__ import annotations

import io
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import GifImagePlugin, Image, ImageFile

from tests.factories import big_jpeg, png_bomb, png_bytes, png_declaring
from ticketing.services import errors, photos
from ticketing.services.errors import InvalidInput, PayloadTooLarge
from ticketing.services.photos import clean_photo

MB = 1024 * 1024


@pytest.fixture()
def decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """The size of every image whose pixels are decoded, as Pillow is asked to load them."""
    sizes: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def spy(image: ImageFile.ImageFile) -> Any:
        if image.tile:  # not yet loaded: this call decodes
            sizes.append(image.size)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    yield sizes


def stored(data: bytes) -> Image.Image:
    """The re-encoded photo, opened."""
    return Image.open(io.BytesIO(clean_photo(data, 50 * MB).data))


def progressive_jpeg(size: tuple[int, int], extra_scans: int = 0) -> bytes:
    """A progressive JPEG of one colour whose last scan comes `extra_scans` more times."""
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 30)).save(out, "JPEG", quality=50, progressive=True)
    data = out.getvalue()
    last, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    return data[:end] + data[last:end] * extra_scans + data[end:]


# --- refused from the header ----------------------------------------------------


def test_a_png_bomb_is_refused_as_too_large_before_any_pixel_is_decoded(decoded: list[Any]) -> None:
    bomb = png_bomb()
    assert len(bomb) < 200 * 1024
    with pytest.raises(PayloadTooLarge) as caught:
        clean_photo(bomb, 5 * MB)
    assert caught.value.status == 413 and caught.value.field == "photos"
    assert decoded == []


@pytest.mark.parametrize("side", [10_000, 20_000])  # past Pillow's warning, past its error
def test_past_pillows_own_bomb_limits_a_photo_is_a_413_even_when_warnings_are_errors(side: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(PayloadTooLarge):
            clean_photo(png_declaring(side, side), 5 * MB)


def test_a_progressive_jpeg_of_hundreds_of_scans_is_refused_before_it_is_decoded(decoded: list[Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_photo(progressive_jpeg((64, 64), extra_scans=100), 5 * MB)
    assert caught.value.status == 400
    assert decoded == []


def test_a_progressive_jpeg_is_held_to_the_lower_limit_of_photos_decoded_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photos, "MAX_FULL_DECODE_PIXELS", 100 * 100)
    assert stored(png_bytes((200, 200), "JPEG")).size == (200, 200)  # one scan: decoded scaled down
    with pytest.raises(PayloadTooLarge):
        clean_photo(progressive_jpeg((200, 200)), 5 * MB)


def test_a_file_of_another_format_is_not_even_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[object] = []
    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_open", lambda image: parsed.append(image))
    with pytest.raises(InvalidInput):
        clean_photo(png_bytes((8, 8), "GIF"), 5 * MB)
    assert parsed == []


# --- large phone photos -----------------------------------------------------------


def test_a_48_megapixel_phone_jpeg_is_accepted_and_kept_at_the_longest_side_limit() -> None:
    image = stored(big_jpeg())
    assert image.format == "JPEG" and image.size == (photos.MAX_SIDE, photos.MAX_SIDE * 3 // 4)


def test_a_48_megapixel_jpeg_is_decoded_at_half_scale(decoded: list[tuple[int, int]]) -> None:
    clean_photo(big_jpeg(), 50 * MB)
    assert decoded == [(4000, 3000)]


def test_a_photo_is_turned_upright_by_its_exif_orientation_and_loses_its_exif(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photos, "MAX_SIDE", 100)  # so that it is shrunk before it is turned
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    exif[0x8825] = {2: (39.0, 54.0, 27.0)}  # GPS latitude of the resident's home
    out = io.BytesIO()
    Image.new("RGB", (400, 200), (200, 30, 30)).save(out, "JPEG", exif=exif.tobytes())
    image = stored(out.getvalue())
    assert image.size == (50, 100)
    assert not image.getexif()


def test_only_the_first_frame_of_an_animated_png_is_kept() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    image = stored(out.getvalue())
    assert getattr(image, "n_frames", 1) == 1
    assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


# --- decodes at once ----------------------------------------------------------------


def test_a_photo_finding_no_free_decode_slot_in_time_is_busy() -> None:
    slots = photos.DecodeSlots(1, wait=0.01)
    with slots.held(), pytest.raises(errors.Busy) as caught:
        clean_photo(png_bytes(), 5 * MB, slots)
    assert caught.value.status == 503
    assert clean_photo(png_bytes(), 5 * MB, slots).content_type == "image/png"


def test_a_photo_that_fails_to_decode_gives_its_slot_back() -> None:
    slots = photos.DecodeSlots(1, wait=0)
    broken = png_declaring(8, 8, b"not zlib at all")
    with pytest.raises(InvalidInput):
        clean_photo(broken, 5 * MB, slots)
    assert clean_photo(png_bytes(), 5 * MB, slots).content_type == "image/png"


def test_no_more_photos_are_decoded_at_once_than_there_are_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    slots = photos.DecodeSlots(2, wait=10)
    inside: list[int] = []
    most = [0]
    changed = threading.Condition()
    go_on = threading.Event()
    reencode: Callable[[Image.Image, str], bytes] = photos.reencode

    def held(image: Image.Image, kind: str) -> bytes:
        with changed:
            inside.append(1)
            most[0] = max(most[0], len(inside))
            changed.notify_all()
        go_on.wait(10)
        with changed:
            inside.pop()
        return reencode(image, kind)

    monkeypatch.setattr(photos, "reencode", held)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(clean_photo(png_bytes(), 5 * MB, slots).extension))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    with changed:
        assert changed.wait_for(lambda: len(inside) == 2, timeout=10)
    time.sleep(0.2)  # room for a third decode to start, were it allowed to
    assert len(inside) == 2
    go_on.set()
    for thread in threads:
        thread.join(10)
    assert most[0] == 2 and results == ["png"] * 4
