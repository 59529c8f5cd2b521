"""The demo world as a Broden-format probe set, so that Network Dissection's automatic labels can be
computed on it: `index.csv`, `label.csv`, `category.csv` and `c_<category>.csv` beside the world's
`images/`, and its per-pixel truth as label PNGs in `labels/` (cells name them `../labels/...`, relative
to `images/` as the layout wants). Regions and objects are the object category (two layers), parts the
part category, textures and colours per pixel, and the scene a per-image label."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline import demo_world

CATEGORY = {"region": "object", "object": "object", "part": "part", "texture": "texture", "color": "color"}
ORDER = ("object", "part", "scene", "texture", "color")


def numbering() -> dict[str, tuple[int, str]]:
    """concept -> (its label number, its Broden category), numbered from 1 in the vocabulary's order."""
    out = {}
    for number, (name, entry) in enumerate(demo_world.VOCAB.items(), start=1):
        layer = str(entry["layer"])
        out[name] = (number, "scene" if layer == "scene" else CATEGORY[layer])
    return out


def _png(path: Path, labels: np.ndarray) -> None:
    rgb = np.zeros((*labels.shape, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = labels % 256, labels // 256
    Image.fromarray(rgb).save(path)


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_broden(world_dir: str | Path) -> Path:
    """Write the layout into `world_dir` (a `demo_world.generate` folder); returns it. Idempotent."""
    root = Path(world_dir)
    world = demo_world.load_truth(root)
    numbers = numbering()
    scenes = list(demo_world.SCENES)
    local = {  # truth layer -> its ids -> label numbers
        layer: np.zeros(1 + max(int(str(e["id"])) for e in demo_world.VOCAB.values() if e["layer"] == layer), np.int64)
        for layer in demo_world.TRUTH_LAYERS
    }
    for name, entry in demo_world.VOCAB.items():
        if entry["layer"] in local:
            local[str(entry["layer"])][int(str(entry["id"]))] = numbers[name][0]
    (root / "labels").mkdir(exist_ok=True)
    rows = []
    for i, rel in enumerate(world["names"].tolist()):
        cells: dict[str, list[str]] = {c: [] for c in ORDER}
        for k, layer in enumerate(demo_world.TRUTH_LAYERS):
            name = f"{i:06d}_{layer}.png"
            if not (root / "labels" / name).is_file():
                _png(root / "labels" / name, local[layer][world["truth"][i, k]])
            cells[CATEGORY[layer]].append(f"../labels/{name}")
        cells["scene"] = [str(numbers[scenes[int(world["scene"][i])]][0])]
        size = world["truth"].shape[-1]
        rows.append([rel, "train", size, size, size, size, *(";".join(cells[c]) for c in ORDER)])
    _write(root / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", *ORDER], rows)
    _write(
        root / "label.csv",
        ["number", "name", "category", "frequency", "coverage", "syns"],
        [[n, name, f"{category}(0)", 0, 1.0, ""] for name, (n, category) in numbers.items()],  # Broden: cat(count)
    )
    _write(root / "category.csv", ["name", "first", "last", "count", "frequency"], [[c, 0, 0, 0, 0] for c in ORDER])
    for category in ORDER:
        mine = [(name, n) for name, (n, c) in numbers.items() if c == category]
        _write(
            root / f"c_{category}.csv",
            ["code", "number", "name", "frequency", "coverage"],
            [[code, n, name, 0, 1.0] for code, (name, n) in enumerate(mine, start=1)],
        )
    return root
