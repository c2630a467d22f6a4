"""Issue 27: odd images never crash, hang or exhaust memory; one bad source never ends a batch.

Real files made by the tests: a 1x1 PNG, a header-bomb PNG (100 MP declared in 100 KB), a
FIFO named like a photo, a degenerate video.
"""

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.device import sources
from fer_edge.device.imageheader import image_size
from fer_edge.device.sources import DEFAULT_MAX_PIXELS, check_image, open_source


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def png_bomb(path: Path, side: int) -> Path:
    """A valid gray PNG of ``side`` x ``side`` zeros: tiny on disk, huge decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(
    "name, params",
    [
        ("a.png", []),
        ("a.jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]),
        ("p.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        ("a.bmp", []),
        ("lossless.webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
        ("lossy.webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
        ("a.tif", []),
        ("a.pgm", []),
    ],
)
def test_the_header_size_is_the_decoded_size(tmp_path, name, params):
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
    path = tmp_path / name
    assert cv2.imwrite(str(path), image[:, :, 0] if name.endswith(".pgm") else image, params)
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image_size(path) == (decoded.shape[1], decoded.shape[0]) == (53, 37)


def test_junk_has_no_size(tmp_path):
    junk = tmp_path / "x.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n")  # cut after the signature
    assert image_size(junk) is None
    assert check_image(junk) == "not a readable image"


def test_a_header_bomb_is_refused_without_decoding(tmp_path, monkeypatch):
    bomb = png_bomb(tmp_path / "bomb.png", 10_000)
    assert bomb.stat().st_size < 1_000_000 and DEFAULT_MAX_PIXELS < 10_000**2
    decoded = []
    monkeypatch.setattr(sources.cv2, "imread", lambda *a: decoded.append(a) or None)
    with pytest.raises(sources.FerEdgeError, match="over --max-pixels"):
        open_source(str(bomb))
    assert decoded == []


def test_a_folder_of_odd_files_skips_and_counts_them(tmp_path, tiny_tflite, astronaut_face):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_face.png"), astronaut_face)
    cv2.imwrite(str(folder / "b_dot.png"), np.zeros((1, 1), np.uint8))
    cv2.imwrite(str(folder / "c_line.png"), np.zeros((1, 500), np.uint8))
    png_bomb(folder / "d_bomb.png", 10_000)
    os.mkfifo(folder / "e_pipe.jpg")  # opening it would block for ever
    csv_path = tmp_path / "faces.csv"
    result = cli("run", "-m", tiny_tflite["int8"], "-s", folder, "--csv", csv_path)
    assert result.exit_code == 0, result.output
    assert "1 frames from images in" in result.stderr and "3 skipped" in result.stderr
    assert "d_bomb.png, which is 10000x10000 px (100 MP): over --max-pixels" in result.stderr
    sources_in_csv = {line.split(",")[0] for line in csv_path.read_text().splitlines()[1:]}
    assert sources_in_csv <= {str(folder / "a_face.png")}


def test_a_single_tiny_image_or_fifo_is_one_line(tmp_path, tiny_tflite):
    dot = tmp_path / "dot.png"
    cv2.imwrite(str(dot), np.zeros((1, 1), np.uint8))
    result = cli("run", "-m", tiny_tflite["int8"], "-s", dot)
    assert result.exit_code == 1 and "too small for a face" in result.stderr
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    result = cli("run", "-m", tiny_tflite["int8"], "-s", fifo)
    assert result.exit_code == 1 and "not a regular file" in result.stderr


def test_a_batch_goes_on_past_a_bad_source(tmp_path, tiny_tflite, two_face_video):
    tiny = tmp_path / "tiny.avi"
    writer = cv2.VideoWriter(str(tiny), cv2.VideoWriter.fourcc(*"MJPG"), 10, (8, 8))
    for _ in range(3):
        writer.write(np.zeros((8, 8, 3), np.uint8))
    writer.release()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    out = tmp_path / "out"
    result = cli(
        "run", "-m", tiny_tflite["int8"], "-s", tiny, "-s", junk, "-s", two_face_video,
        "--out-dir", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 sources: 1 done, 2 skipped" in result.stderr
    assert (out / f"{Path(two_face_video).stem}.jsonl").exists()
