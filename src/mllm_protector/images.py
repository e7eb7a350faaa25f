"""Decoding the `image` input of `protector` and `mllm`: checked, bounded, and turned into an RGB PIL image.

The tensor holds encoded PNG/JPEG/WebP bytes, or the same bytes base64-encoded (JSON clients; a `data:` URL prefix is
accepted). Sizes are checked before any pixel is decoded: the encoded length first, then the dimensions that
`Image.open` reads from the header, so a small file declaring a huge canvas (a decompression bomb) is refused without
allocating it. Every failure is one `ImageError` whose message can be returned to the client as is.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # 10 MiB of encoded image
DEFAULT_MAX_PIXELS = 4096 * 4096  # 16.7 Mpx
# A progressive JPEG is decoded over the whole canvas once per scan, and a scan can cost 33 bytes of file: 2,000 of
# them in 165 KB held a decode for 12 s, 10 MB of them for ~30 min. Encoders write 1 scan (baseline) or ~10
# (progressive); an EXIF thumbnail or a second MPF picture adds theirs. Every start-of-scan marker (FF DA) in the
# file is counted: entropy-coded data stuffs each FF byte as FF 00, so the pair cannot occur inside a scan.
MAX_JPEG_SCANS = 100
# Vision processors resize the short side to a fixed size, so a 1 x 100000 strip would become enormous; Qwen2-VL's
# processor refuses ratios of 200 and above itself.
DEFAULT_MAX_ASPECT_RATIO = 200.0

_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/_=\-\s]+")
_DATA_URL = re.compile(rb"data:[\w.+/-]*(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_FORMAT_NAMES = "PNG, JPEG or WebP"
_OTHER_FORMATS = (
    (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"\x00\x00\x01\x00", "ICO"),
    (b"%PDF", "PDF"), (b"8BPS", "PSD"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x1cftypavif", "AVIF"), (b"\x00\x00\x00\x18ftypheic", "HEIC"),
    (b"<svg", "SVG"), (b"<?xml", "SVG/XML"),
)


class ImageError(ValueError):
    """The `image` input cannot be used; the message says why, in words fit for the client."""


def _looks_encoded(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _human(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def _is_base64_text(data: bytes) -> bool:
    text = data.strip()
    return bool(_DATA_URL.match(text) or _BASE64_TEXT.fullmatch(text))


def _sniff_other_format(data: bytes) -> str | None:
    """The name of a well-known image format we refuse, for a clearer message."""
    for magic, name in _OTHER_FORMATS:
        if data.startswith(magic):
            return name
    return None


def _unbase64(data: bytes, max_bytes: int) -> bytes:
    text = data.strip()
    match = _DATA_URL.match(text)
    if match:
        text = text[match.end():]
    text = re.sub(rb"\s+", b"", text)
    # The encoded length bounds the decoded one: refuse before decoding anything too big.
    if len(text) // 4 * 3 > max_bytes + 2:
        size = _human(len(text) // 4 * 3)
        raise ImageError(f"image is too large: about {size} once decoded, the limit is {_human(max_bytes)}")
    text = text.replace(b"-", b"+").replace(b"_", b"/")  # URL-safe alphabet
    text += b"=" * (-len(text) % 4)  # clients often drop the padding
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ImageError(f"image looks like base64 text but does not decode ({e})") from None


def decode_image(
    data: bytes | bytearray | memoryview | str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
) -> Image.Image:
    """The RGB image in `data` (encoded PNG/JPEG/WebP bytes, or base64 of them); `ImageError` if it is unusable.

    Checks, in order: not empty; at most `max_bytes` encoded bytes; a PNG, JPEG or WebP header; at most `max_pixels`
    pixels and a side ratio up to `max_aspect_ratio` (from the header, before decoding); the file verifies and decodes
    completely (truncated or corrupt files are refused, not padded). EXIF orientation is applied and transparency is
    flattened onto white, so text drawn on a transparent background stays readable.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    data = bytes(data)
    if not data.strip():
        raise ImageError("image is empty")
    if not _looks_encoded(data) and _is_base64_text(data):
        if len(data) > 2 * max_bytes:  # base64 is 4/3 of the bytes, plus line breaks
            raise ImageError(f"image is too large: {_human(len(data))}, the limit is {_human(max_bytes)}")
        data = _unbase64(data, max_bytes)
        if not data:
            raise ImageError("image is empty")
    if len(data) > max_bytes:
        raise ImageError(f"image is too large: {_human(len(data))}, the limit is {_human(max_bytes)}")

    with warnings.catch_warnings():
        # Our own pixel limit applies; PIL's warning level (89 Mpx) is only noise here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
        except Image.DecompressionBombError as e:
            declared = re.search(r"\((\d+) pixels\)", str(e))
            size = f"{declared.group(1)} pixels" if declared else "a huge canvas"
            raise ImageError(
                f"image is too large: its header declares {size} (a decompression bomb?), "
                f"the limit is {max_pixels} pixels"
            ) from None
        except UnidentifiedImageError:
            other = _sniff_other_format(data)
            if other:
                raise ImageError(f"image format {other} is not supported; send {_FORMAT_NAMES}") from None
            raise ImageError(f"image is not a {_FORMAT_NAMES} image (unrecognised or corrupt data)") from None
        except Exception as e:  # header parsers raise many kinds (SyntaxError, struct.error, ...)
            raise ImageError(f"image is truncated or corrupt ({type(e).__name__}: {e})") from None
        fmt = image.format or "unknown"
        if fmt not in ALLOWED_FORMATS:
            raise ImageError(f"image format {fmt} is not supported; send {_FORMAT_NAMES}")
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageError(f"image has an empty canvas ({width}x{height})")
        if width * height > max_pixels:
            raise ImageError(
                f"image is too large: {width}x{height} = {width * height} pixels, the limit is {max_pixels} pixels"
            )
        if max(width, height) / min(width, height) > max_aspect_ratio:
            raise ImageError(
                f"image is too elongated: {width}x{height}, the longer side may be at most "
                f"{max_aspect_ratio:g} times the shorter"
            )
        scans = data.count(b"\xff\xda") if fmt == "JPEG" else 0
        if scans > MAX_JPEG_SCANS:
            raise ImageError(f"image is a JPEG of {scans} scans, the limit is {MAX_JPEG_SCANS} (each scan decodes the "
                             "whole picture again)")
        try:
            image.verify()  # checksums and structure, without decoding pixels
            image = Image.open(io.BytesIO(data), formats=[fmt])  # verify() leaves the object unusable
            image.load()  # decodes completely; a truncated file raises instead of being padded
            image = ImageOps.exif_transpose(image)
        except Exception as e:
            raise ImageError(f"image is truncated or corrupt ({type(e).__name__}: {e})") from None
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit greyscale (PNG): scale to 8 bits first, PIL's direct conversion clips at 255.
        import numpy as np

        arr = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "L")
    return image.convert("RGB")
