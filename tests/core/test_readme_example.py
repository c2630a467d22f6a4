"""The README's first command and the usage guide's Python example run as written."""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
USAGE = REPO / "docs" / "usage.md"
FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"


def example_code():
    section = USAGE.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def photo():
    image = np.full((360, 480, 3), 120, np.uint8)
    image[60:260, 140:340] = cv2.resize(cv2.imread(str(FACE)), (200, 200))
    return image


def test_readme_python_example(tmp_path, monkeypatch, capsys, two_face_video):
    cv2.imwrite(str(tmp_path / "face.png"), cv2.imread(str(FACE)))
    cv2.imwrite(str(tmp_path / "photo.jpg"), photo())
    shutil.copy(two_face_video, tmp_path / "clip.mp4")
    (tmp_path / "photos").mkdir()
    for name in ("a.jpg", "b.png"):
        cv2.imwrite(str(tmp_path / "photos" / name), photo())
    monkeypatch.chdir(tmp_path)
    exec(compile(example_code(), "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out.splitlines()
    crop, face, *frames, totals = out
    assert crop.split()[0] in crop.split(None, 1)[1]  # the label is one of its scores' keys
    assert re.fullmatch(r"\[\d+, \d+, \d+, \d+\] \w+ [\d.]+", face)
    # Every 5th frame of the 24-frame clip, two faces each, with ids.
    assert [line.split()[0] for line in frames] == ["0", "5", "10", "15", "20"]
    assert all(len(re.findall(r"\((\d+), '\w+'\)", line)) == 2 for line in frames)
    assert totals.startswith("2 2 ") and totals.endswith(" fps")
    assert (tmp_path / "faces.csv").is_file() and (tmp_path / "report.html").is_file()


def test_readme_first_command_labels_the_astronaut(tmp_path):
    """Quick start: the photo's face found and labelled, the annotated image and report written."""
    block = re.search(r"```bash\n(.*?)```", README.read_text().split("## Quick start", 1)[1], re.S)
    steps = [shlex.split(part) for part in block.group(1).split("&&")]
    run = next(step for step in steps if step[:2] == [".venv/bin/fer-edge", "run"])
    args = [str(REPO / a) if a.startswith("tests/data/") else a for a in run[2:]]
    done = subprocess.run(
        [sys.executable, "-m", "fer_edge", "run", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    (face,) = json.loads(line)["faces"]
    # Eileen Collins smiles in the NASA portrait.
    assert face["label"] == "happy" and face["score"] > 0.5
    saved = next(a for a in args if a.endswith(".annotated.jpg"))
    image = cv2.imread(str(tmp_path / saved))
    assert image is not None and image.shape == (512, 512, 3)
    assert (tmp_path / "astronaut.html").read_text().count("happy") >= 1
    assert any(step[:2] == [".venv/bin/fer-edge", "bench"] for step in steps)
