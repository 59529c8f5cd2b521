"""A small generated probe set in the Broden layout, with features whose units are planted: one copies
an object's mask, one a part's, one is dead, one constant, one noise. Label numbers run past 255 (so the
PNGs' green channel matters), one label is listed in two categories, and segmentations are 32 x 32 and
30 x 21 against 7 x 7 maps (non-integer upsampling ratios)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

CATEGORY_ORDER = ["object", "part", "material", "scene", "texture", "color"]  # material is not used
# number -> (name, {category: coverage})
LABELS = {
    1: ("sky", {"object": 0.3}),
    2: ("car", {"object": 0.2}),
    3: ("door", {"object": 0.4, "part": 0.1}),  # in two categories: counts in object only
    4: ("wheel", {"part": 0.2}),
    5: ("wood", {"material": 0.5}),
    6: ("street", {"scene": 0.9}),
    7: ("striped", {"texture": 0.3}),
    8: ("red", {"color": 0.5}),
    300: ("window", {"part": 0.3}),  # past 255: its PNG pixels need the green channel
}
UNITS = 5
SIZES = [(32, 32), (30, 21)]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _png(path: Path, labels: np.ndarray) -> None:
    rgb = np.zeros((*labels.shape, 3), np.uint8)
    rgb[..., 0] = labels % 256
    rgb[..., 1] = labels // 256
    Image.fromarray(rgb).save(path)


def make(root: Path, images: int = 24, seed: int = 0) -> tuple[Path, np.ndarray]:
    """Write the set under `root`; returns (root, features N x UNITS x 7 x 7 float32)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    _write(
        root / "category.csv",
        ["name", "first", "last", "count", "frequency"],
        [[c, 0, 0, 0, 0] for c in CATEGORY_ORDER],
    )
    _write(
        root / "label.csv",
        ["number", "name", "category", "frequency", "coverage", "syns"],
        [[n, name, ";".join(cats), 1, 0.1, ""] for n, (name, cats) in LABELS.items()],
    )
    for category in CATEGORY_ORDER:
        rows = [
            [i, n, name, 1, cats[category]] for i, (n, (name, cats)) in enumerate(LABELS.items()) if category in cats
        ]
        _write(root / f"c_{category}.csv", ["code", "number", "name", "frequency", "coverage"], rows)
    index_rows = []
    features = np.zeros((images, UNITS, 7, 7), np.float32)
    for i in range(images):
        height, width = SIZES[i % len(SIZES)]
        yy, xx = np.mgrid[:height, :width]
        objects = np.where(yy < height // 3, 1, 0)  # sky on top
        centre = width * (0.3 + 0.4 * rng.random())
        car = (abs(yy - height * 0.65) < height * 0.1) & (abs(xx - centre) < width * 0.12) & (i % 4 == 1)
        objects = np.where(car, 2, objects)
        door = (xx > width * 0.8) & (yy > height * 0.5)
        objects = np.where(door, 3, objects)
        parts = np.where(car & (yy > height * 0.72), 4, 0)
        parts = np.where(door & (yy < height * 0.7), 3, parts)  # a door drawn as a part too
        windows = np.where(car & (yy < height * 0.6), 300, 0)
        _png(root / "images" / f"{i:03d}_object.png", objects)
        _png(root / "images" / f"{i:03d}_part_1.png", parts)
        _png(root / "images" / f"{i:03d}_part_2.png", windows)
        _png(root / "images" / f"{i:03d}_material.png", np.full((height, width), 5))
        texture = "7" if i % 3 == 0 else ""
        colour = f"{i:03d}_color.png" if i % 2 else ""
        if colour:
            _png(root / "images" / colour, np.where(yy < height // 4, 8, 0))  # a red band in the sky
        index_rows.append(
            [
                f"{i:03d}.jpg",
                "train",
                height * 4,
                width * 4,
                height,
                width,
                f"{i:03d}_object.png",
                f"{i:03d}_part_1.png;{i:03d}_part_2.png",
                f"{i:03d}_material.png",
                "6" if i % 4 == 0 else "",
                texture,
                colour,
            ]
        )
        small = np.asarray(Image.fromarray(car.astype(np.float32)).resize((7, 7), Image.Resampling.BILINEAR))
        features[i, 0] = small * 3 + rng.normal(0, 0.05, (7, 7))  # the car
        wheel = np.asarray(Image.fromarray((parts == 4).astype(np.float32)).resize((7, 7), Image.Resampling.BILINEAR))
        features[i, 1] = wheel * 2 + rng.normal(0, 0.05, (7, 7))  # a part
        features[i, 2] = 0.0  # dead
        features[i, 3] = 1.5  # constant
        features[i, 4] = rng.normal(size=(7, 7))  # noise
    # An image with no label in any used category is left out of the tally (and of the features).
    index_rows.append(["blank.jpg", "train", 128, 128, 32, 32, "", "", f"{0:03d}_material.png", "", "", ""])
    _write(
        root / "index.csv",
        ["image", "split", "ih", "iw", "sh", "sw", "object", "part", "material", "scene", "texture", "color"],
        index_rows,
    )
    return root, features
