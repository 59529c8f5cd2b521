"""A probe set in the Broden layout (Bau et al., CVPR 2017), read as it is: `index.csv` (one row an
image: its segmentation size and, per category, per-image label numbers or PNGs of per-pixel labels),
`label.csv` (label names), `category.csv` (the categories' order) and `c_<category>.csv` (each label's
coverage in a category, which decides the one category a label counts in: its primary category).

Only what Network Dissection's tally reads is read (`../shared/NETDISSECT.md`): names, coverages,
segmentation sizes and the cells of the used categories. Every problem names its file and row."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CATEGORIES = ("object", "part", "scene", "texture", "color")  # NetDissect-Lite's default


class BrodenError(ValueError):
    """A probe set that cannot be read as the Broden layout; the message names the file and row."""


@dataclass(frozen=True)
class ProbeImage:
    """One kept row of index.csv: the image, its segmentation size, and per used category (in order)
    its PNGs (relative to images/) and per-image label numbers."""

    row: int  # the line in index.csv (for messages)
    image: str
    height: int  # sh
    width: int  # sw
    pngs: tuple[tuple[str, ...], ...]
    scalars: tuple[tuple[int, ...], ...]


@dataclass
class BrodenSet:
    root: Path
    categories: list[str]  # the used ones, in category.csv's order
    names: list[str]  # label number -> name ('' for 0)
    primary: np.ndarray  # label number -> index of its primary category
    images: list[ProbeImage]
    known: np.ndarray  # label number -> listed in label.csv (0 counts as known: unlabelled)

    @property
    def labels(self) -> int:
        return len(self.names)

    def pixel_layers(self, image: ProbeImage) -> np.ndarray:
        """K x sh x sw label numbers (R + 256 G) of every PNG of the image, in category then cell order."""
        layers = []
        for category, pngs in zip(self.categories, image.pngs, strict=True):
            for name in pngs:
                path = self.root / "images" / name
                try:
                    with Image.open(path) as png:
                        rgb = np.asarray(png.convert("RGB"), dtype=np.int64)
                except (OSError, ValueError) as error:
                    raise BrodenError(
                        f"index.csv row {image.row}: cannot read {category} PNG {path}: {error}"
                    ) from error
                if rgb.shape[:2] != (image.height, image.width):
                    raise BrodenError(
                        f"index.csv row {image.row}: {path.name} is {rgb.shape[1]} x {rgb.shape[0]}, not the row's "
                        f"segmentation size sw x sh = {image.width} x {image.height}"
                    )
                labels = rgb[:, :, 0] + 256 * rgb[:, :, 1]
                unknown = labels[(labels >= self.labels) | ~self.known[np.minimum(labels, self.labels - 1)]]
                if len(unknown):
                    bad = int(unknown.min())
                    raise BrodenError(
                        f"index.csv row {image.row}: {path.name} holds label {bad}, which label.csv does not have "
                        f"(the numbers it lists run from 1 to {self.labels - 1})"
                    )
                layers.append(labels)
        if not layers:
            return np.zeros((0, image.height, image.width), np.int64)
        return np.stack(layers)


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise BrodenError(f"The probe set has no {path.name} ({path}).")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise BrodenError(f"{path.name} has no column {', '.join(missing)} (it has {', '.join(header) or 'none'}).")
        return list(reader)


def _int(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BrodenError(f"{where}: {text!r} is not a whole number") from None


def read(root: str | Path, categories: tuple[str, ...] = CATEGORIES) -> BrodenSet:
    root = Path(root)
    if not root.is_dir():
        raise BrodenError(f"No probe set folder {root}.")
    listed = [row["name"] for row in _read_csv(root / "category.csv", ("name",))]
    used = [name for name in listed if name in categories]
    if not used:
        raise BrodenError(
            f"category.csv names none of the categories {', '.join(categories)} (it has {', '.join(listed)})."
        )
    label_rows = _read_csv(root / "label.csv", ("number", "name"))
    numbers = {}
    for line, row in enumerate(label_rows, start=2):
        numbers[_int(row["number"], f"label.csv row {line}")] = row["name"]
    count = max(numbers, default=0) + 1
    names = [numbers.get(n, "") for n in range(count)]
    names[0] = ""
    known = np.asarray([n == 0 or n in numbers for n in range(count)])
    coverage = np.zeros((count, len(used)))
    for c, category in enumerate(used):
        for line, row in enumerate(_read_csv(root / f"c_{category}.csv", ("number", "coverage")), start=2):
            number = _int(row["number"], f"c_{category}.csv row {line}")
            if not 0 <= number < count:
                raise BrodenError(f"c_{category}.csv row {line}: label {number} is not in label.csv")
            try:
                coverage[number, c] = float(row["coverage"])
            except ValueError:
                raise BrodenError(
                    f"c_{category}.csv row {line}: coverage {row['coverage']!r} is not a number"
                ) from None
    # the highest coverage; ties (no coverage at all included) go to the last category
    primary = len(used) - 1 - np.argmax(coverage[:, ::-1], axis=1)
    rows = _read_csv(root / "index.csv", ("image", "sh", "sw", *used))
    images = []
    for line, row in enumerate(rows, start=2):
        cells = [[part for part in (row[c] or "").split(";") if part] for c in used]
        if not any(cells):
            continue
        pngs = tuple(tuple(p for p in cell if not p.isdigit()) for cell in cells)
        scalars = []
        for category, cell in zip(used, cells, strict=True):
            values = tuple(int(p) for p in cell if p.isdigit())
            for value in values:
                if not 0 < value < count or not known[value]:
                    raise BrodenError(f"index.csv row {line}: {category} label {value} is not in label.csv")
            scalars.append(values)
        height, width = _int(row["sh"], f"index.csv row {line} sh"), _int(row["sw"], f"index.csv row {line} sw")
        if height < 1 or width < 1:
            raise BrodenError(f"index.csv row {line}: the segmentation size {width} x {height} is empty")
        images.append(ProbeImage(line, row["image"], height, width, pngs, tuple(scalars)))
    if not images:
        raise BrodenError(f"index.csv has no image with a label in {', '.join(used)}.")
    return BrodenSet(root, used, names, primary, images, known)
