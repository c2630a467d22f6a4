"""Frame sources: image files, folders, globs, video files, cameras (real OpenCV I/O)."""

import sys
import types

import cv2
import numpy as np
import pytest

from fer_edge.device.sources import CameraSource, ImageSource, VideoSource, open_source
from fer_edge.errors import FerEdgeError


def write_video(path, n, fps=8.0, size=(64, 48)):
    """Frame i is a flat gray of 20 * i, so order survives lossy coding."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


def collect(source):
    try:
        return list(source.frames())
    finally:
        source.close()


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "b.png"), np.full((30, 40), 200, np.uint8))  # gray on disk
    cv2.imwrite(str(folder / "a.jpg"), np.full((20, 20, 3), 50, np.uint8))
    (folder / "c.png").write_bytes(b"\x89PNG truncated")  # an image that fails to decode
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_is_sorted_bgr_and_counts_bad_images(image_folder):
    source = open_source(str(image_folder))
    assert isinstance(source, ImageSource)
    frames = collect(source)
    assert [f.name for f in frames] == ["a.jpg", "b.png"]
    assert [f.index for f in frames] == [0, 1]
    assert all(f.image.ndim == 3 and f.image.shape[2] == 3 for f in frames)
    assert frames[1].image.shape == (30, 40, 3) and int(frames[1].image[0, 0, 0]) == 200
    assert source.skipped == 1
    assert frames[0].t <= frames[1].t


def test_glob_and_size(image_folder):
    frames = collect(open_source(str(image_folder / "*.png"), size=(16, 12)))
    assert [f.name for f in frames] == ["b.png"]
    assert frames[0].image.shape == (12, 16, 3)


def test_single_image_and_unreadable_image(image_folder):
    assert len(collect(open_source(str(image_folder / "a.jpg")))) == 1
    with pytest.raises(FerEdgeError, match=r"--source: .*c\.png is not a readable image"):
        open_source(str(image_folder / "c.png"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.mp4", "does not exist"),
        ("empty", "holds no images"),
        ("imgs/*.gif", "matches no files"),
    ],
)
def test_missing_sources_name_the_flag(tmp_path, image_folder, spec, message):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerEdgeError, match=f"--source.*{message}"):
        open_source(str(tmp_path / spec))


def test_video_frames_timestamps_and_scaling(tmp_path):
    path = write_video(tmp_path / "clip.avi", 12, fps=8.0)
    source = open_source(str(path), size=(32, 24))
    assert isinstance(source, VideoSource) and source.fps == pytest.approx(8.0)
    frames = collect(source)
    assert [f.index for f in frames] == list(range(12))
    np.testing.assert_allclose([f.t for f in frames], np.arange(12) / 8.0, atol=1e-3)
    assert all(f.image.shape == (24, 32, 3) for f in frames)
    levels = [float(f.image.mean()) for f in frames]
    np.testing.assert_allclose(levels, 20 * np.arange(12), atol=4)
    assert source.skipped == 0


def test_file_that_is_not_a_video(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"junk" * 1000)
    with pytest.raises(FerEdgeError, match=r"--source: cannot open .*junk\.mp4 as a video"):
        open_source(str(junk))


def test_absent_camera_is_a_clear_error():
    # /dev/video63 is far beyond any camera a test machine has.
    with pytest.raises(FerEdgeError, match="--source 63: no camera found"):
        open_source("63")
    with pytest.raises(FerEdgeError, match="--source /dev/video63: no camera found"):
        CameraSource("/dev/video63", None, None)


def test_picamera_without_picamera2(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as on a non-Pi machine
    with pytest.raises(FerEdgeError, match="--source picamera: picamera2 is not installed"):
        open_source("picamera")


class FakePicamera2:
    """Stands in for the camera hardware: records calls, returns BGR frames as RGB888 does."""

    instances: list["FakePicamera2"] = []

    def __init__(self):
        self.calls: list[str] = []
        self.config = None
        self.frame = 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main):
        return {"main": main}

    def configure(self, config):
        self.config = config

    def set_controls(self, controls):
        self.calls.append(f"controls {controls}")

    def start(self):
        self.calls.append("start")

    def capture_array(self, name="main"):
        width, height = self.config["main"]["size"]
        image = np.zeros((height, width, 3), np.uint8)
        image[..., 0] = 255  # blue in BGR byte order
        image[0, 0, 2] = self.frame
        self.frame += 1
        return image

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


def test_picamera_requests_bgr_and_closes(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    FakePicamera2.instances.clear()
    source = open_source("picamera", size=(160, 120), max_fps=15)
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 3:
            break
    source.close()
    source.close()  # twice is harmless
    cam = FakePicamera2.instances[0]
    assert cam.config == {"main": {"size": (160, 120), "format": "RGB888"}}
    assert cam.calls == ["controls {'FrameRate': 15.0}", "start", "stop", "close"]
    # RGB888 is already BGR in memory: no channel swap on the way to OpenCV.
    assert [int(f.image[0, 0, 2]) for f in frames] == [0, 1, 2]
    assert all(f.image.shape == (120, 160, 3) and f.image[1, 1, 0] == 255 for f in frames)


def test_video_frame_that_fails_to_decode_is_skipped_and_counted(tmp_path):
    data = bytearray(write_video(tmp_path / "clip.avi", 12).read_bytes())
    # MJPG stores each frame as a JPEG; wiping frame 5's start makes just that frame undecodable.
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xd8"]
    assert len(starts) == 12
    data[starts[5] : starts[5] + 200] = bytes(200)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    source = open_source(str(broken))
    frames = collect(source)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert source.skipped == 1
    assert frames[5].t == pytest.approx(6 / 8.0, abs=1e-3)
