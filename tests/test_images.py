"""`decode_image`: good images in every accepted encoding, and one clear `ImageError` for every bad one."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib

import pytest
from PIL import Image

from mllm_protector.images import DEFAULT_MAX_PIXELS, ImageError, decode_image


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def sample(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((20, 20, 220), (10, 10, 40, 30))
    return image.convert(mode)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares a `width` x `height` canvas: what a decompression bomb's header looks like."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 16))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepted_formats_raw_and_base64(fmt: str) -> None:
    data = encode(sample(), fmt)
    for payload in (data, base64.b64encode(data), base64.b64encode(data).decode("ascii")):
        image = decode_image(payload)
        assert image.mode == "RGB" and image.size == (64, 48)
        red, green, blue = image.getpixel((2, 2))
        assert red > 150 and green < 80 and blue < 80


def test_base64_variants() -> None:
    data = encode(sample(), "PNG")
    b64 = base64.b64encode(data)
    assert decode_image(b"data:image/png;base64," + b64).size == (64, 48)
    assert decode_image(base64.urlsafe_b64encode(data).rstrip(b"=")).size == (64, 48)
    assert decode_image(base64.encodebytes(data)).size == (64, 48)  # MIME line breaks
    assert decode_image(memoryview(data)).size == (64, 48)


def test_modes_become_rgb_and_transparency_is_white() -> None:
    for mode in ("L", "P", "CMYK", "LA", "RGBA", "1", "I;16"):
        image = sample(mode if mode != "I;16" else "L")
        if mode == "I;16":
            image = image.convert("I;16")
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        assert decode_image(encode(image, fmt)).mode == "RGB", mode
    clear = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    assert decode_image(encode(clear, "PNG")).getpixel((5, 5)) == (255, 255, 255)
    assert decode_image(encode(clear, "WEBP", lossless=True)).getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(sample(size=(64, 48)), "JPEG", exif=exif)
    assert decode_image(data).size == (48, 64)


def expect_error(data, match: str, **limits) -> ImageError:
    with pytest.raises(ImageError, match=match) as info:
        decode_image(data, **limits)
    assert isinstance(info.value, ValueError)
    return info.value


def test_empty() -> None:
    expect_error(b"", "empty")
    expect_error(b"   \n", "empty")


def test_not_an_image() -> None:
    expect_error(b"\x00\x01\x02 definitely not an image \xff\xfe", "not a PNG, JPEG or WebP image")
    expect_error(b"hello, a prompt in the wrong input field!", "not a PNG, JPEG or WebP image")
    # base64 that decodes fine, to something that is not an image
    expect_error(base64.b64encode(b"just some text, not pixels"), "not a PNG, JPEG or WebP image")


def test_base64_garbage() -> None:
    expect_error(b"aGVsbG8=aGVsbG8=====", "base64")
    expect_error(b"abcde", "base64")
    expect_error(b"data:image/png;base64,!!!!", "base64")


@pytest.mark.parametrize("fmt,name", [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("ICO", "ICO")])
def test_unsupported_format(fmt: str, name: str) -> None:
    data = encode(sample(), fmt)
    err = expect_error(data, f"format {name} is not supported")
    assert "PNG, JPEG or WebP" in str(err)
    expect_error(base64.b64encode(data), f"format {name} is not supported")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated(fmt: str) -> None:
    image = Image.effect_noise((256, 256), 64).convert("RGB")
    data = encode(image, fmt)
    expect_error(data[: len(data) // 2], "truncated or corrupt|not a PNG")
    expect_error(data[:20], "truncated or corrupt|not a PNG")


def test_corrupt_png_checksum() -> None:
    data = bytearray(encode(Image.effect_noise((64, 64), 64).convert("RGB"), "PNG"))
    data[len(data) // 2] ^= 0xFF  # inside IDAT: the CRC no longer matches
    expect_error(bytes(data), "truncated or corrupt")


def test_too_many_bytes() -> None:
    data = encode(Image.effect_noise((256, 256), 64).convert("RGB"), "PNG")
    err = expect_error(data, "too large", max_bytes=1000)
    assert "limit" in str(err)
    expect_error(base64.b64encode(data), "too large", max_bytes=1000)
    expect_error(b"A" * 5000, "too large", max_bytes=1000)  # refused before base64 decoding


def test_too_many_pixels() -> None:
    data = encode(sample(size=(200, 100)), "PNG")
    expect_error(data, "200x100 = 20000 pixels", max_pixels=10_000)
    assert decode_image(data, max_pixels=20_000).size == (200, 100)


def test_too_elongated() -> None:
    expect_error(encode(Image.new("RGB", (1000, 2)), "PNG"), "elongated")


@pytest.mark.parametrize("side", [5000, 50_000, 65_000])
def test_bomb_header_rejected_fast(side: int) -> None:
    data = png_header_only(side, side)
    assert len(data) < 100
    start = time.perf_counter()
    err = expect_error(data, "too large")
    assert time.perf_counter() - start < 0.5
    assert str(DEFAULT_MAX_PIXELS) in str(err)
    expect_error(base64.b64encode(data), "too large")


def test_png_header_bomb_in_real_file() -> None:
    """A real highly compressible canvas over the limit: refused from the header, never decoded."""
    data = encode(Image.new("L", (8000, 8000)), "PNG")
    assert len(data) < 200_000
    start = time.perf_counter()
    expect_error(data, "64000000 pixels")
    assert time.perf_counter() - start < 0.5


def jpeg_with_scans(extra: int, side: int = 64) -> bytes:
    """A valid progressive JPEG whose last (refinement) scan is repeated `extra` more times: each repeat is a few
    bytes of file and one more decode of the whole canvas (the shape of a JPEG scan bomb)."""
    data = encode(Image.new("L", (side, side), 255), "JPEG", progressive=True, quality=90)
    segments, i = [], 2
    while data[i + 1] != 0xD9:  # split into marker segments; a scan runs to the next marker that is not FF00 / RSTn
        end = i + 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        if data[i + 1] == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] != 0x00 and not 0xD0 <= data[end + 1] <= 0xD7):
                end += 1
        segments.append(data[i:end])
        i = end
    return b"\xff\xd8" + b"".join(segments) + segments[-1] * extra + b"\xff\xd9"


def test_jpeg_scan_bomb_is_refused_and_ordinary_progressive_jpegs_pass() -> None:
    from mllm_protector.images import MAX_JPEG_SCANS

    progressive = jpeg_with_scans(0)
    scans = progressive.count(b"\xff\xda")
    assert 1 < scans < MAX_JPEG_SCANS and decode_image(progressive).size == (64, 64)
    at_limit = jpeg_with_scans(MAX_JPEG_SCANS - scans)
    assert decode_image(at_limit).size == (64, 64)  # repeated scans are valid JPEG: only their number is refused
    err = expect_error(jpeg_with_scans(MAX_JPEG_SCANS - scans + 1), f"the limit is {MAX_JPEG_SCANS}")
    assert f"{MAX_JPEG_SCANS + 1} scans" in str(err)
    expect_error(base64.b64encode(jpeg_with_scans(2000)), "scans")
