"""Write the demo images and scribble files of ``repro segment`` (run once; outputs committed).

Three photos that ship with scikit-image, resized to a shortest side of 256 pixels, saved as
``examples/scribbles/<name>.png``, and their scribbles as ``<name>_scribbles.png``: palette PNGs
of class indices, 255 = unlabelled (the format ``repro segment --scribbles`` reads). Strokes are
straight polylines drawn here by hand-chosen coordinates (x, y in the resized image).

    python examples/make_scribbles.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from repro.data.palette import IGNORE_INDEX, write_label_png

OUT = Path(__file__).resolve().parent / "scribbles"
STROKE_WIDTH = 5
SHORT_SIDE = 256

# name -> {class index: [polyline, ...]}, polyline = [(x, y), ...]
STROKES: dict[str, dict[int, list[list[tuple[int, int]]]]] = {
    "astronaut": {  # 0 background, 1 astronaut, 2 helmet
        0: [
            [(150, 20), (172, 120)],
            [(10, 20), (15, 120)],
            [(60, 8), (95, 8)],
            [(242, 140), (250, 165)],
        ],
        1: [[(60, 170), (120, 230)], [(110, 45), (112, 85)], [(40, 150), (30, 220)]],
        2: [[(170, 200), (235, 215)]],
    },
    "coffee": {  # 0 table, 1 cup, 2 saucer
        0: [[(20, 30), (40, 220)], [(340, 20), (360, 220)], [(150, 246), (250, 248)]],
        1: [[(150, 80), (220, 80)], [(150, 120), (200, 130)]],
        2: [[(80, 150), (90, 200)], [(250, 190), (280, 150)]],
    },
    "chelsea": {  # 0 background, 1 cat
        0: [[(10, 40), (15, 200)], [(350, 150), (375, 240)], [(340, 20), (370, 60)]],
        1: [[(100, 100), (300, 150)], [(200, 30), (220, 220)]],
    },
}


def resized_photo(name: str) -> Image.Image:
    array = getattr(skimage.data, name)()
    image = Image.fromarray(array).convert("RGB")
    scale = SHORT_SIDE / min(image.size)
    size = (round(image.size[0] * scale), round(image.size[1] * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def draw_scribbles(
    size: tuple[int, int], strokes: dict[int, list[list[tuple[int, int]]]]
) -> np.ndarray:
    canvas = Image.new("L", size, IGNORE_INDEX)
    draw = ImageDraw.Draw(canvas)
    for class_index, lines in strokes.items():
        for line in lines:
            draw.line(line, fill=class_index, width=STROKE_WIDTH)
    return np.array(canvas, dtype=np.uint8)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, strokes in STROKES.items():
        image = resized_photo(name)
        image.save(OUT / f"{name}.png")
        write_label_png(OUT / f"{name}_scribbles.png", draw_scribbles(image.size, strokes))
        print(f"wrote {OUT / name}.png and {name}_scribbles.png ({image.size[0]}x{image.size[1]})")


if __name__ == "__main__":
    main()
