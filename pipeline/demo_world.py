"""The embedded demo world: procedural scenes whose per-pixel truth is known (METHOD section 7).

A scene class is a pair of objects. Backgrounds, colours and textures are drawn independently of
the class, so a classifier can only succeed by finding objects, and its units become object detectors.
Distractor objects never complete another class's pair.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
TRUTH_LAYERS = ("region", "object", "part", "texture", "color")

COLOURS = {
    "red": (205, 45, 40),
    "green": (50, 150, 60),
    "blue": (50, 85, 200),
    "yellow": (235, 205, 45),
    "white": (238, 238, 232),
    "black": (30, 30, 35),
    "grey": (125, 125, 130),
    "brown": (125, 78, 42),
    "orange": (235, 125, 35),
    "purple": (130, 65, 165),
}
REGIONS = {  # region -> (upper or lower band, colours it may take)
    "sky": ("upper", ("blue", "white", "grey")),
    "wall": ("upper", ("white", "brown", "yellow", "grey")),
    "grass": ("lower", ("green",)),
    "water": ("lower", ("blue", "grey")),
    "road": ("lower", ("grey", "black")),
    "sand": ("lower", ("yellow", "orange")),
}
OBJECTS = ("house", "tree", "car", "boat", "lamp", "ball")
PARTS = ("roof", "door", "trunk", "crown", "wheel", "window", "hull", "sail", "pole", "light")
TEXTURES = ("striped", "dotted", "checkered")
SCENES = {  # scene -> the pair of objects that makes it
    "village": ("house", "tree"),
    "street": ("car", "lamp"),
    "harbour": ("boat", "lamp"),
    "park": ("tree", "ball"),
    "garage": ("car", "house"),
    "lake": ("boat", "tree"),
}


def vocabulary() -> dict[str, dict[str, object]]:
    """Every concept with its category and its id in its truth layer (0 means none)."""
    vocab: dict[str, dict[str, object]] = {}
    for layer, names, category in (
        ("region", REGIONS, "region"),
        ("object", OBJECTS, "object"),
        ("part", PARTS, "part"),
        ("texture", TEXTURES, "texture"),
        ("color", COLOURS, "color"),
    ):
        for i, name in enumerate(names, start=1):
            vocab[name] = {"layer": layer, "id": i, "category": category}
    for i, name in enumerate(SCENES, start=1):
        vocab[name] = {"layer": "scene", "id": i, "category": "scene"}
    return vocab


def distractors(scene: str) -> list[str]:
    """Objects that may join `scene` without completing another class's pair."""
    a, b = SCENES[scene]
    pairs = {frozenset(p) for p in SCENES.values()}
    return [o for o in OBJECTS if o not in (a, b) and frozenset((a, o)) not in pairs and frozenset((b, o)) not in pairs]


class Canvas:
    """Paints the picture and every truth layer with the same shapes, so truth is exact."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", (SIZE, SIZE))
        self.layers = {name: Image.new("L", (SIZE, SIZE)) for name in TRUTH_LAYERS}
        self.draw = ImageDraw.Draw(self.image)
        self.truth = {name: ImageDraw.Draw(img) for name, img in self.layers.items()}

    def shape(self, kind: str, xy: object, colour: str, rng: np.random.Generator, **labels: str) -> None:
        fill = tuple(int(np.clip(c + rng.integers(-18, 19), 0, 255)) for c in COLOURS[colour])
        getattr(self.draw, kind)(xy, fill=fill)
        vocab = VOCAB
        labels.setdefault("color", colour)
        for layer in TRUTH_LAYERS:
            if layer in labels:
                value = vocab[labels[layer]]["id"] if labels[layer] else 0
                getattr(self.truth[layer], kind)(xy, fill=value)
            elif layer in ("part", "texture"):
                getattr(self.truth[layer], kind)(xy, fill=0)

    def texture(self, box: tuple[int, int, int, int], texture: str, colour: str, rng: np.random.Generator) -> None:
        """Overlay a pattern inside a box; the texture layer marks the box, colours follow the strokes."""
        x0, y0, x1, y1 = box
        mask = np.zeros((SIZE, SIZE), dtype=bool)
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        inside = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        period = int(rng.integers(4, 7))
        if texture == "striped":
            mask = inside & ((xx + yy) % period < period // 2)
        elif texture == "dotted":
            mask = inside & ((xx % period) < 2) & ((yy % period) < 2)
        else:
            mask = inside & (((xx // period) + (yy // period)) % 2 == 0)
        pixels = np.asarray(self.image).copy()
        pixels[mask] = COLOURS[colour]
        self.image.paste(Image.fromarray(pixels))
        for layer, value in (("texture", VOCAB[texture]["id"]), ("color", VOCAB[colour]["id"])):
            arr = np.asarray(self.layers[layer]).copy()
            arr[inside if layer == "texture" else mask] = value
            self.layers[layer].paste(Image.fromarray(arr))


VOCAB = vocabulary()


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def paint_background(canvas: Canvas, rng: np.random.Generator) -> None:
    horizon = int(rng.integers(22, 42))
    upper = _pick(rng, [r for r, (band, _) in REGIONS.items() if band == "upper"])
    lower = _pick(rng, [r for r, (band, _) in REGIONS.items() if band == "lower"])
    for region, box in ((upper, (0, 0, SIZE, horizon)), (lower, (0, horizon, SIZE, SIZE))):
        colour = _pick(rng, REGIONS[region][1])
        canvas.shape("rectangle", box, colour, rng, region=region, object="", part="", texture="")
        if rng.random() < 0.25:
            texture = _pick(rng, TEXTURES)
            canvas.texture((box[0], box[1], box[2], box[3]), texture, _pick(rng, list(COLOURS)), rng)


def paint_object(canvas: Canvas, name: str, cx: int, base: int, s: int, rng: np.random.Generator) -> None:
    """Draw object `name` standing on y=`base`, centred on x=`cx`, about `s` pixels tall."""
    o = {"object": name}
    if name == "house":
        body = (cx - s // 2, base - s * 2 // 3, cx + s // 2, base)
        canvas.shape("rectangle", body, _pick(rng, ("white", "yellow", "red", "brown")), rng, **o)
        if rng.random() < 0.3:
            canvas.texture(body, _pick(rng, TEXTURES), _pick(rng, list(COLOURS)), rng)
            canvas.truth["object"].rectangle(body, fill=int(VOCAB[name]["id"]))  # type: ignore[call-overload]  # VOCAB holds objects
        canvas.shape(
            "polygon",
            [(cx - s // 2 - 2, body[1]), (cx + s // 2 + 2, body[1]), (cx, base - s)],
            _pick(rng, ("red", "brown", "black")),
            rng,
            part="roof",
            **o,
        )
        canvas.shape(
            "rectangle",
            (cx - s // 8, base - s // 3, cx + s // 8, base),
            _pick(rng, ("brown", "black")),
            rng,
            part="door",
            **o,
        )
    elif name == "tree":
        canvas.shape(
            "rectangle", (cx - s // 10 - 1, base - s // 2, cx + s // 10 + 1, base), "brown", rng, part="trunk", **o
        )
        r = s // 3 + 1
        canvas.shape(
            "ellipse",
            (cx - r, base - s, cx + r, base - s + 2 * r),
            _pick(rng, ("green", "orange")),
            rng,
            part="crown",
            **o,
        )
    elif name == "car":
        h = s // 3 + 2
        canvas.shape(
            "rectangle",
            (cx - s // 2 - 2, base - h - 3, cx + s // 2 + 2, base - 3),
            _pick(rng, ("red", "blue", "yellow", "white", "purple", "orange")),
            rng,
            **o,
        )
        canvas.shape(
            "rectangle",
            (cx - s // 4, base - h - 3 - s // 5, cx + s // 4, base - h - 3),
            "white",
            rng,
            part="window",
            **o,
        )
        w = max(3, s // 6)
        for wx in (cx - s // 3, cx + s // 3):
            canvas.shape("ellipse", (wx - w, base - 2 * w, wx + w, base), "black", rng, part="wheel", **o)
    elif name == "boat":
        canvas.shape(
            "polygon",
            [
                (cx - s // 2 - 2, base - s // 3),
                (cx + s // 2 + 2, base - s // 3),
                (cx + s // 3, base),
                (cx - s // 3, base),
            ],
            _pick(rng, ("brown", "white", "red")),
            rng,
            part="hull",
            **o,
        )
        canvas.shape(
            "polygon",
            [(cx, base - s), (cx, base - s // 3 - 1), (cx + s // 2, base - s // 3 - 1)],
            _pick(rng, ("white", "yellow", "red")),
            rng,
            part="sail",
            **o,
        )
    elif name == "lamp":
        canvas.shape(
            "rectangle", (cx - 1, base - s, cx + 1, base), _pick(rng, ("black", "grey")), rng, part="pole", **o
        )
        r = max(3, s // 6)
        canvas.shape("ellipse", (cx - r, base - s - r, cx + r, base - s + r), "yellow", rng, part="light", **o)
    elif name == "ball":
        r = s // 3
        box = (cx - r, base - 2 * r, cx + r, base)
        canvas.shape("ellipse", box, _pick(rng, ("red", "blue", "white", "purple")), rng, **o)
        if rng.random() < 0.5:
            canvas.shape("rectangle", (cx - r + 1, base - r - 1, cx + r - 1, base - r + 1), "white", rng, **o)
    else:
        raise ValueError(f"Unknown object {name!r}")


@dataclass
class Scene:
    image: Image.Image
    truth: np.ndarray  # len(TRUTH_LAYERS) x SIZE x SIZE uint8
    scene: str
    objects: list[str]


def make_scene(rng: np.random.Generator, scene: str | None = None) -> Scene:
    scene = scene or _pick(rng, list(SCENES))
    objects = list(SCENES[scene])
    if rng.random() < 0.5 and distractors(scene):
        objects.append(_pick(rng, distractors(scene)))
    rng.shuffle(objects)
    canvas = Canvas()
    paint_background(canvas, rng)
    slots = np.linspace(10, SIZE - 10, len(objects) + 1)
    for i, name in enumerate(objects):
        lo, hi = int(slots[i]), int(slots[i + 1])
        cx = int(rng.integers(lo + 4, max(lo + 5, hi - 4)))
        size = int(rng.integers(16, 27))
        base = int(rng.integers(size + 4, SIZE - 1))
        paint_object(canvas, name, cx, base, size, rng)
    truth = np.stack([np.asarray(canvas.layers[name]) for name in TRUTH_LAYERS])
    return Scene(canvas.image, truth, scene, objects)


def generate(out_dir: str | Path, count: int, seed: int = 0) -> Path:
    """Write `count` scenes as PNGs under `out_dir/images/<scene>/`, and `truth.npz` and `world.json`
    in `out_dir`: the truth file holds, per image (in `names` order), one map per truth layer."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    names, truths, scenes = [], [], []
    for i in range(count):
        scene = make_scene(rng, list(SCENES)[i % len(SCENES)])
        rel = f"{scene.scene}/{i:06d}.png"
        (out / "images" / scene.scene).mkdir(parents=True, exist_ok=True)
        scene.image.save(out / "images" / rel)
        names.append(rel)
        truths.append(scene.truth)
        scenes.append(list(SCENES).index(scene.scene))
    np.savez_compressed(
        out / "truth.npz", names=np.array(names), truth=np.stack(truths), scene=np.array(scenes, dtype=np.int64)
    )
    (out / "world.json").write_text(
        json.dumps({"size": SIZE, "layers": list(TRUTH_LAYERS), "scenes": list(SCENES), "vocabulary": VOCAB}, indent=1)
    )
    return out


def load_truth(world_dir: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(world_dir) / "truth.npz") as data:
        return {k: data[k] for k in data.files}
