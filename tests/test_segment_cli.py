"""``repro segment``: a success run on a tiny image and every bad input (exit 2, nothing written)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.cli.main import main
from repro.data.palette import IGNORE_INDEX, read_label_png, write_label_png

FAST = ["--steps", "10", "--draws", "2", "--threads", "1"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    image = np.zeros((24, 32, 3), dtype=np.uint8)
    image[:, 16:] = 200
    scribbles = np.full((24, 32), IGNORE_INDEX, dtype=np.uint8)
    scribbles[4:20, 3:5] = 0
    scribbles[4:20, 27:29] = 1
    paths = {
        "image": tmp_path / "img.png",
        "scribbles": tmp_path / "scr.png",
        "small": tmp_path / "small.png",
        "empty": tmp_path / "empty.png",
        "single": tmp_path / "single.png",
        "broken": tmp_path / "broken.png",
    }
    Image.fromarray(image).save(paths["image"])
    write_label_png(paths["scribbles"], scribbles)
    write_label_png(paths["small"], scribbles[:12])
    write_label_png(paths["empty"], np.full_like(scribbles, IGNORE_INDEX))
    write_label_png(paths["single"], np.where(scribbles == 1, 0, scribbles))
    paths["broken"].write_bytes(b"not a png")
    return paths


def test_success_writes_mask_and_overlay(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    out, overlay = tmp_path / "o" / "mask.png", tmp_path / "o" / "overlay.png"
    code = main(
        [
            "segment",
            str(files["image"]),
            "--scribbles",
            str(files["scribbles"]),
            "--out",
            str(out),
            "--overlay",
            str(overlay),
            *FAST,
        ]
    )
    assert code == 0
    mask = read_label_png(out)
    assert mask.shape == (24, 32) and set(np.unique(mask)) <= {0, 1}
    assert Image.open(overlay).size == (32, 24)
    assert "time from reading to writing" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("image", "scribbles", "message"),
    [
        ("image", "small", "differs"),
        ("image", "empty", "no scribbled pixel"),
        ("image", "single", "only class 0"),
        ("broken", "scribbles", "IMAGE: cannot read"),
        ("image", "broken", "--scribbles: cannot read"),
        ("missing", "scribbles", "IMAGE: file not found"),
    ],
)
def test_bad_input_exit_2_nothing_written(
    files: dict[str, Path], tmp_path: Path, capsys, image: str, scribbles: str, message: str
) -> None:
    out, overlay = tmp_path / "mask.png", tmp_path / "overlay.png"
    image_path = files.get(image, tmp_path / "missing.png")
    code = main(
        [
            "segment",
            str(image_path),
            "--scribbles",
            str(files[scribbles]),
            "--out",
            str(out),
            "--overlay",
            str(overlay),
            *FAST,
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not overlay.exists()


def test_bad_numbers_exit_2(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "mask.png"
    code = main(
        [
            "segment",
            str(files["image"]),
            "--scribbles",
            str(files["scribbles"]),
            "--out",
            str(out),
            "--steps",
            "0",
        ]
    )
    assert code == 2 and "--steps" in capsys.readouterr().err
    assert not out.exists()
