"""CPU time and peak memory of cleaning one photo: a PNG bomb beside real-sized phone JPEGs.

    python bench/photo_bench.py [--max-bytes 52428800]

Each case runs `services.photos.clean_photo` once in a fresh child process, so the
peak resident set (VmHWM in /proc/self/status: Linux only) is that photo's alone;
the child's baseline (Python, Pillow and the file's bytes already in memory) is
subtracted. The cases:

- `png-bomb`: a 154 KB PNG declaring 6300x6300 RGBA (159 MB once decoded);
- `jpeg-scan-bomb`: a 4096x4096 progressive JPEG of one colour whose last scan is
  repeated 300 times (libjpeg passes over the whole image once per scan);
- `png-16mp`: the largest PNG accepted, 4096x4096 of noise;
- `jpeg-12mp`, `jpeg-48mp`: 4000x3000 and 8000x6000 JPEGs of camera-like noise.

Refused photos print the error instead of the output size. `--max-bytes` is
raised above MAX_PHOTO_BYTES so that the 48 MP file is decoded, not refused for
its byte size.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image

CASES = ("png-bomb", "jpeg-scan-bomb", "png-16mp", "jpeg-12mp", "jpeg-48mp")


def png_bomb(width: int = 6300, height: int = 6300) -> bytes:
    """A transparent RGBA PNG of `width` x `height`, compressed as far as zlib goes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    compressor = zlib.compressobj(9)
    row = bytes(1 + width * 4)  # filter byte 0, then zero pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def camera_jpeg(width: int, height: int) -> bytes:
    """A JPEG whose noise compresses about as badly as a phone photo's detail."""
    tile = Image.effect_noise((1000, 1000), 40).convert("RGB")
    image = Image.new("RGB", (width, height))
    for x in range(0, width, 1000):
        for y in range(0, height, 1000):
            image.paste(tile, (x, y))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def scan_bomb(side: int = 4096, repeats: int = 300) -> bytes:
    """A progressive JPEG whose last scan comes `repeats` more times."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (90, 120, 30)).save(out, "JPEG", quality=50, progressive=True)
    data = out.getvalue()
    last = data.rindex(b"\xff\xda")  # one colour: no 0xFF in the scans' data
    end = data.rindex(b"\xff\xd9")
    return data[:end] + data[last:end] * repeats + data[end:]


def make(case: str) -> bytes:
    """The input bytes of one case."""
    if case == "png-bomb":
        return png_bomb()
    if case == "jpeg-scan-bomb":
        return scan_bomb()
    if case == "png-16mp":
        out = io.BytesIO()
        Image.effect_noise((4096, 4096), 40).convert("RGB").save(out, "PNG")
        return out.getvalue()
    width, height = {"jpeg-12mp": (4000, 3000), "jpeg-48mp": (8000, 6000)}[case]
    return camera_jpeg(width, height)


def peak_rss_kb() -> int:
    """This process's peak resident set so far, in KB.

    Not ru_maxrss: Linux carries that over from the parent across exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(path: Path, max_bytes: int) -> dict[str, object]:
    """Clean the photo at `path` once; CPU seconds, peak RSS above the baseline, outcome."""
    from ticketing.services.photos import clean_photo

    data = path.read_bytes()
    before = peak_rss_kb()
    cpu = time.process_time()
    try:
        photo = clean_photo(data, max_bytes)
        outcome = f"accepted, {len(photo.data) // 1024} KB {photo.content_type}"
        with Image.open(io.BytesIO(photo.data)) as stored:
            outcome += f" {stored.width}x{stored.height}"
    except Exception as exc:  # noqa: BLE001 - the bench reports whatever happened
        outcome = f"refused: {type(exc).__name__} {getattr(exc, 'status', '')} {exc}"
    cpu = time.process_time() - cpu
    peak = peak_rss_kb()
    return {"bytes": len(data), "cpu_s": round(cpu, 3), "peak_mb": round((peak - before) / 1024, 1),
            "outcome": outcome}


def main() -> None:
    """Generate the inputs, measure each in a child process, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-bytes", type=int, default=50 * 1024 * 1024)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child), args.max_bytes)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            path = Path(tmp) / case
            path.write_bytes(make(case))
            out = subprocess.run([sys.executable, __file__, "--max-bytes", str(args.max_bytes), "--child", str(path)],
                                 check=True, capture_output=True, text=True).stdout
            result = json.loads(out)
            print(f"{case:14} {result['bytes'] / 1024:9.0f} KB  cpu {result['cpu_s']:6.3f} s  "
                  f"peak +{result['peak_mb']:7.1f} MB  {result['outcome']}")


if __name__ == "__main__":
    main()
