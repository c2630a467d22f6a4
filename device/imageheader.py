"""An image's size from its file header, before any pixel is decoded.

A 389 KB PNG can declare 20000x20000 pixels, 1.2 GB once decoded; OpenCV would allocate it all
before saying anything. :func:`image_size` reads only the header (a few hundred bytes, a few
kilobytes for a JPEG with big metadata), so ``fer-edge run`` can skip an image over the pixel
cap (``--max-pixels``) the way it skips a corrupt one. Formats: the :data:`~fer_edge.data.
IMAGE_SUFFIXES` ones: PNG, JPEG, BMP, WebP, TIFF and PGM/PPM.
"""

from __future__ import annotations

import os
import re
import struct
from typing import BinaryIO

#: JPEG start-of-frame markers (baseline, progressive, lossless...): they hold the size.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE})
#: How far into a JPEG to look for its frame header (EXIF thumbnails and ICC profiles first).
_JPEG_SCAN = 1 << 20
_PNM = re.compile(rb"^P[1-6]\s+(?:#[^\n]*\n\s*)*(\d+)\s+(?:#[^\n]*\n\s*)*(\d+)")


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """Return ``(width, height)`` declared in the header of the image at ``path``.

    Returns:
        The size, or ``None`` when the header is not one this module reads (an unknown or
        damaged file: the caller treats it as undecodable).

    Raises:
        OSError: the file cannot be opened or read.
    """
    with open(path, "rb") as f:
        head = f.read(64)
        try:
            return _size(f, head)
        except (struct.error, ValueError, IndexError):
            return None


def _size(f: BinaryIO, head: bytes) -> tuple[int, int] | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(f)
    if head.startswith(b"BM"):
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height)  # negative height: rows stored top-down
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp_size(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(f, "<" if head[:2] == b"II" else ">")
    match = _PNM.match(head)
    if match:
        return int(match.group(1)), int(match.group(2))
    return None


def _jpeg_size(f: BinaryIO) -> tuple[int, int] | None:
    f.seek(2)
    while f.tell() < _JPEG_SCAN:
        byte = f.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            continue
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in (0x01, 0xD8) or 0xD0 <= code <= 0xD7:
            continue  # markers without a length
        (length,) = struct.unpack(">H", f.read(2))
        if code in _JPEG_SOF:
            height, width = struct.unpack(">xHH", f.read(5))
            return width, height
        f.seek(length - 2, os.SEEK_CUR)
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _tiff_size(f: BinaryIO, order: str) -> tuple[int, int] | None:
    f.seek(4)
    (offset,) = struct.unpack(order + "I", f.read(4))
    f.seek(offset)
    (count,) = struct.unpack(order + "H", f.read(2))
    found: dict[int, int] = {}
    for _ in range(min(count, 4096)):
        tag, kind, _n, value = struct.unpack(order + "HHI4s", f.read(12))
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            fmt = "H" if kind == 3 else "I"
            found[tag] = struct.unpack(order + fmt, value[: struct.calcsize(fmt)])[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None
