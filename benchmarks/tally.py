"""Automatic labels benchmark: what Network Dissection's tally (`pipeline.tally`) adds to the activation
pass, as a ratio in one run.

A Broden-like probe set is generated on disk: 224-px images, segmentations at 112 x 112 with four label
layers (object, two part layers, material-like colour) holding blobs of ~1,200 label numbers, a scene
per image. ResNet-18 (random weights, torchvision's module names) runs to `layer4` (512 units, 7 x 7)
over it in batches of 16 as `dissect` runs it (`top_k_pass`, the top images and probe scores), then
again keeping the maps and writing them to disk as `dissect --probe` does; the threshold sketch and the
tally read them back. Printed: images/s of each, and what keeping the maps, the sketch and the tally
add to the activation pass's time. Target: the IoU work adds at most 50%.

Run: `python benchmarks/tally.py [--images 96] [--device cuda]` (part of `make bench`). On a GPU it also
tallies the same maps on the CPU and says whether the two tally.csv files are identical.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import broden, tally  # noqa: E402
from pipeline.activations import top_k_pass  # noqa: E402
from pipeline.networks import build_network  # noqa: E402

LABELS = 1200
SEG = 112


def probe_set(root: Path, count: int, rng: np.random.Generator) -> None:
    (root / "images").mkdir(parents=True)
    cats = ["object", "part", "scene", "texture", "color"]
    with (root / "category.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["name", "first", "last", "count", "frequency"], *[[c, 0, 0, 0, 0] for c in cats]])
    kinds = {n: cats[n % 5] for n in range(1, LABELS + 1)}
    with (root / "label.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["number", "name", "category", "frequency", "coverage", "syns"]] + [
            [n, f"l{n}", f"{kinds[n]}(1)", 1, 0.1, ""] for n in range(1, LABELS + 1)
        ])  # fmt: skip
    for c in cats:
        with (root / f"c_{c}.csv").open("w", newline="") as f:
            rows = [[i, n, f"l{n}", 1, 0.1] for i, n in enumerate([n for n in kinds if kinds[n] == c], start=1)]
            csv.writer(f).writerows([["code", "number", "name", "frequency", "coverage"], *rows])
    by_cat = {c: [n for n in kinds if kinds[n] == c] for c in cats}
    yy, xx = np.mgrid[:SEG, :SEG]
    index = [["image", "split", "ih", "iw", "sh", "sw", *cats]]
    for i in range(count):
        cells = {}
        for layer, category in (("object", "object"), ("part1", "part"), ("part2", "part"), ("color", "color")):
            labels = np.zeros((SEG, SEG), np.int64)
            for _ in range(6):  # blobs of random labels, about as dense as Broden's object layer
                cy, cx, r = rng.integers(0, SEG, 2).tolist() + [int(rng.integers(8, 40))]
                labels[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.choice(by_cat[category])
            rgb = np.stack([labels % 256, labels // 256, np.zeros_like(labels)], axis=-1).astype(np.uint8)
            Image.fromarray(rgb).save(root / "images" / f"{i}_{layer}.png")
            cells.setdefault(category, []).append(f"{i}_{layer}.png")
        index.append(
            [f"{i}.jpg", "train", 224, 224, SEG, SEG, cells["object"][0], ";".join(cells["part"]),
             str(rng.choice(by_cat["scene"])), "", cells["color"][0]]
        )  # fmt: skip
    with (root / "index.csv").open("w", newline="") as f:
        csv.writer(f).writerows(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where the network and the tally run")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_network("resnet18").model.to(device)

    def clock() -> float:  # a GPU's work is asynchronous: wait for it before reading the clock
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    inputs = torch.randn(args.images, 3, 224, 224)
    ids = torch.arange(args.images)

    def batches():
        for s in range(0, args.images, 16):
            yield ids[s : s + 16], inputs[s : s + 16]

    with tempfile.TemporaryDirectory() as tmp:
        probe_set(Path(tmp) / "probe", args.images, rng)
        probe = broden.read(Path(tmp) / "probe")
        top_k_pass(model, ["layer4"], batches(), 60)  # warm-up
        start = clock()
        top_k_pass(model, ["layer4"], batches(), 60, probe={})
        forward = clock() - start
        start = clock()
        kept: dict[str, list[torch.Tensor]] = {"layer4": []}
        top_k_pass(model, ["layer4"], batches(), 60, probe={}, maps=kept)
        np.savez(Path(tmp) / "maps.npz", ids=ids.numpy(), layer4=torch.cat(kept["layer4"]).numpy())
        keeping = clock() - start - forward
        start = time.perf_counter()
        with np.load(Path(tmp) / "maps.npz") as stored:
            layer4 = torch.from_numpy(stored["layer4"])
        sketch = tally.ThresholdSketch(layer4.shape[1], layer4.shape[0] * 49)
        sketch.add(layer4)  # a chunk at once, as the thresholds step adds each kept chunk
        levels = torch.from_numpy(sketch.thresholds())
        sketching = time.perf_counter() - start
        start = clock()
        with np.load(Path(tmp) / "maps.npz") as stored:
            layer4 = torch.from_numpy(stored["layer4"])
        counts = tally.Tally.empty(layer4.shape[1], probe.labels, len(probe.categories))
        on_device = levels.to(device)
        for i, image in enumerate(probe.images):
            counts.add(probe, image, layer4[i].to(device), on_device)  # as the tally step runs it
        tallying = clock() - start
        results = tally.labels(counts, probe)
        if device.type != "cpu":  # the same maps tallied on the CPU: does the device's tally.csv equal it?
            cpu = tally.Tally.empty(layer4.shape[1], probe.labels, len(probe.categories))
            for i, image in enumerate(probe.images):
                cpu.add(probe, image, layer4[i], levels)
            mine, theirs = (tally.tally_csv(c, probe, tally.labels(c, probe)).splitlines() for c in (counts, cpu))
            differ = sum(a != b for a, b in zip(mine, theirs, strict=True))
            same = "identical" if not differ else f"{differ} of {len(mine) - 1} rows differ"
            print(f"tally.csv on {device} beside the CPU's from the same maps: {same}")
    n = args.images
    print(
        f"ResNet-18 layer4 (512 units, 7 x 7) over {n} images at 224 px, segmentations {SEG} x {SEG}, {LABELS} labels, "
        f"on {device}:"
    )
    print(f"  activation pass (top images)    {n / forward:7.1f} images/s")
    kept_rate = f"{n / keeping:7.1f} images/s" if keeping > 0 else "  within the timing's noise"
    print(f"  keeping its maps (to disk)      {kept_rate}")
    print(f"  threshold sketch (from disk)    {n / sketching:7.1f} images/s")
    print(f"  tally (from disk, PNGs read)    {n / tallying:7.1f} images/s")
    print(
        f"  the IoU work adds {(keeping + sketching + tallying) / forward:.0%} to the activation pass's time "
        f"(target: at most 50%); {sum(r.detector for r in results)} of 512 units above IoU 0.04 (random weights)"
    )


if __name__ == "__main__":
    main()
