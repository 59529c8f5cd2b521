"""Network Dissection's automatic labels (Bau et al., CVPR 2017), computed as NetDissect-Lite's tally
computes them (`../shared/NETDISSECT.md`), in bounded memory and vectorised over units and pixels.

Two streaming passes over a layer's maps (N x U x h x w, in index.csv's order), each mergeable across
chunks of images so that workers can split the set:
1. `ThresholdSketch`: each unit's level at quantile 994/999 of all its raw map values. Only the top
   values that can reach the quantile are kept (about 0.5% of N h w a unit), so the quantile is exact
   (Hazen's interpolation between order statistics) and memory is U x that many values.
2. `Tally`: per image, the maps of the units whose maximum exceeds their threshold are upsampled
   bilinearly (half-pixel centres, edge clamping) to the image's segmentation size, thresholded, and
   counted against the image's per-pixel and per-image labels: intersections, label areas and each
   unit's activation area per category.
Then `labels()` gives IoU = I / (A + T - I + 1e-10), the best label per category and the unit's."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.broden import BrodenSet, ProbeImage

QUANTILE = 994 / 999  # NetDissect-Lite reads column int(1000 * (1 - 0.005) - 1) of a 1000-point readout
DETECTOR_IOU = 0.04  # an interpretable detector (the tally itself applies no threshold)
EPSILON = 1e-10  # kept: it moves an IoU of exactly 0.04 just below


def quantile_rank(count: int, level: float = QUANTILE) -> tuple[int, float]:
    """(k, f): Hazen's quantile of `count` sorted values is x[k] + f (x[k+1] - x[k]), 0-based from the
    smallest, k clamped to the values there are."""
    h = count * level - 0.5
    k = min(max(int(math.floor(h)), 0), count - 1)
    return k, (min(max(h - k, 0.0), 1.0) if k + 1 < count else 0.0)


class ThresholdSketch:
    """Each unit's largest values over the images seen so far: as many as the quantile can reach for a
    layer of `total` values a unit (known in advance: N h w)."""

    def __init__(self, units: int, total: int) -> None:
        self.total = total
        k, _ = quantile_rank(total)
        self.keep = total - k  # x[k] .. x[total - 1] from the top
        self.top = torch.full((units, 0), -math.inf, dtype=torch.float64)

    def add(self, maps: torch.Tensor) -> None:
        """maps: B x U x h x w of one batch of images."""
        values = maps.detach().to(torch.float64).permute(1, 0, 2, 3).reshape(maps.shape[1], -1)
        joined = torch.cat([self.top, values], dim=1)
        self.top = joined.topk(min(self.keep, joined.shape[1]), dim=1).values

    def merge(self, other: ThresholdSketch) -> None:
        joined = torch.cat([self.top, other.top], dim=1)
        self.top = joined.topk(min(self.keep, joined.shape[1]), dim=1).values

    def thresholds(self) -> np.ndarray:
        if self.top.shape[1] < self.keep:
            raise ValueError(f"The sketch has seen {self.top.shape[1]} of the {self.keep} top values it needs.")
        k, f = quantile_rank(self.total)
        ordered = self.top.flip(1)  # ascending: position j is x[total - keep + j]
        low = ordered[:, k - (self.total - self.keep)]
        high = ordered[:, min(k + 1 - (self.total - self.keep), self.keep - 1)]
        return (low + f * (high - low)).numpy()


def upsample(maps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """U x h x w maps at the segmentation size: bilinear with half-pixel centres and edge clamping
    (PIL's float resize upward; downward PIL antialiases, and so does this)."""
    down = height < maps.shape[-2] or width < maps.shape[-1]
    return F.interpolate(maps[None], size=(height, width), mode="bilinear", align_corners=False, antialias=down)[0]


def unit_masks(
    maps: torch.Tensor, thresholds: torch.Tensor, height: int, width: int, among: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the live units, their masks at the segmentation size): a unit (of those `among` marks) is live
    in an image where its maximum exceeds its threshold; its mask is where the upsampled map does,
    compared in float32 as NetDissect-Lite's code compares them under the NumPy it was written for."""
    above = maps.flatten(1).amax(dim=1) > thresholds
    live = torch.nonzero(above if among is None else above & among).flatten()
    if not len(live):  # interpolate takes no empty batch
        return live, torch.zeros(0, height, width, dtype=torch.bool, device=maps.device)
    up = upsample(maps[live].to(torch.float32), height, width)
    return live, up > thresholds[live, None, None].to(up.dtype)


@dataclass
class Tally:
    """The counts (float64): T per label, I per unit and label, Act per unit and category."""

    truth: torch.Tensor  # L
    intersect: torch.Tensor  # U x L
    activation: torch.Tensor  # U x C

    @classmethod
    def empty(cls, units: int, labels: int, categories: int) -> Tally:
        z = torch.zeros
        return cls(
            z(labels, dtype=torch.float64),
            z(units, labels, dtype=torch.float64),
            z(units, categories, dtype=torch.float64),
        )

    def merge(self, other: Tally) -> None:
        self.truth += other.truth
        self.intersect += other.intersect
        self.activation += other.activation

    def add(self, probe: BrodenSet, image: ProbeImage, maps: torch.Tensor, thresholds: torch.Tensor) -> None:
        """One image's counts; maps U x h x w (the raw layer output), thresholds U. The work runs on the
        maps' device (the network's: a GPU where the network ran on one), and only the small per-image
        results come back to the counts, kept on the CPU. The labels an image holds are few, so the
        intersections are one product: the units' masks (U' x pixels) by the pixels' counts of each
        label present (pixels x D, summed over the layers); counts are whole numbers below 2^24, exact
        in float32 on the CPU (float64 elsewhere, where a matrix product may round through TF32), and
        add up in float64."""
        device = maps.device
        thresholds = thresholds.to(device)
        layers = torch.from_numpy(probe.pixel_layers(image)).to(device)  # K x sh x sw
        scalars = [s for values in image.scalars for s in values]
        pixels = image.height * image.width
        flat = layers.reshape(layers.shape[0], -1)
        present, counts = torch.unique(flat[flat != 0], return_counts=True)
        labels_here = present.cpu()
        self.truth.index_add_(0, labels_here, counts.cpu().to(torch.float64))
        for s in scalars:
            self.truth[s] += pixels
        live, masks = unit_masks(maps, thresholds, image.height, image.width)
        if not len(live):
            return
        exact = torch.float32 if device.type == "cpu" else torch.float64
        mask = masks.reshape(len(live), -1).to(exact)
        area = mask.sum(dim=1).to(torch.float64).cpu()  # |A| per live unit
        units = live.cpu()
        if len(present):
            column = torch.searchsorted(present, flat)  # each (layer, pixel)'s label among those present
            column = torch.where(flat == 0, len(present), column)  # unlabelled: a column dropped below
            per_pixel = torch.zeros(flat.shape[1], len(present) + 1, dtype=exact, device=device)  # pixels x (D+1)
            rows = torch.arange(flat.shape[1], device=device).expand_as(flat)
            ones = torch.ones(flat.numel(), dtype=exact, device=device)
            per_pixel.index_put_((rows.reshape(-1), column.reshape(-1)), ones, accumulate=True)
            hits = (mask @ per_pixel[:, :-1]).to(torch.float64).cpu()  # U' x D
            self.intersect[units[:, None], labels_here[None, :]] += hits
        else:
            hits = torch.zeros(len(live), 0, dtype=torch.float64)
        gate = torch.zeros(len(live), self.activation.shape[1], dtype=torch.float64)
        gate.index_add_(1, torch.from_numpy(probe.primary)[labels_here], hits)
        for s in scalars:
            gate[:, int(probe.primary[s])] += 1
            self.intersect[units, s] += area
        self.activation[units] += (gate > 0).to(torch.float64) * area[:, None]


@dataclass(frozen=True)
class UnitLabel:
    unit: int
    category: str
    label: str
    score: float
    per_category: tuple[tuple[int, float], ...]  # (label number, IoU) per used category

    @property
    def detector(self) -> bool:
        return iou_detector(self.score)


def iou_detector(score: float, threshold: float = DETECTOR_IOU) -> bool:
    """The one rule for "is this unit an interpretable detector" by its IoU (computed or imported)."""
    return score >= threshold


def labels(tally: Tally, probe: BrodenSet) -> list[UnitLabel]:
    """Each unit's best label per category (first maximum: the lowest label number; 0 and '' where no
    label scores) and its own: the best category's (ties to the last category)."""
    primary = torch.from_numpy(probe.primary)
    denominator = tally.activation[:, primary] + tally.truth[None] - tally.intersect + EPSILON
    iou = (tally.intersect / denominator).numpy()
    out = []
    categories = len(probe.categories)
    for unit in range(iou.shape[0]):
        best = []
        for c in range(categories):
            mine = np.flatnonzero(probe.primary == c)
            mine = mine[mine != 0]
            if len(mine) and iou[unit, mine].max() > 0:
                j = int(mine[np.argmax(iou[unit, mine])])
                best.append((j, float(iou[unit, j])))
            else:
                best.append((0, 0.0))
        scores = [score for _, score in best]
        c = categories - 1 - int(np.argmax(scores[::-1]))
        label, score = best[c]
        out.append(UnitLabel(unit, probe.categories[c], probe.names[label], score, tuple(best)))
    return out


def tally_csv(tally: Tally, probe: BrodenSet, results: list[UnitLabel]) -> str:
    """NetDissect-Lite's tally.csv: `unit,category,label,score` then per category its label, truth,
    activation, intersection and IoU; units from 1, best first (ties: the higher unit first); floats as
    Python writes them; CRLF line endings."""
    out = io.StringIO()
    writer = csv.writer(out)  # the csv module's default line ending is CRLF, as NetDissect-Lite's
    header = ["unit", "category", "label", "score"]
    for c in probe.categories:
        header += [f"{c}-label", f"{c}-truth", f"{c}-activation", f"{c}-intersect", f"{c}-iou"]
    writer.writerow(header)
    for result in sorted(results, key=lambda r: (-r.score, -r.unit)):
        row = [result.unit + 1, result.category, result.label, float(result.score)]
        for label, score in result.per_category:
            row += [
                probe.names[label],
                float(tally.truth[label]) if label else 0.0,
                float(tally.activation[result.unit, int(probe.primary[label])]),
                float(tally.intersect[result.unit, label]) if label else 0.0,
                float(score),
            ]
        writer.writerow([str(v) for v in row])
    return out.getvalue()


class Examples:
    """Each unit's few probe images where its mask meets its label most (the unit page shows them): a
    third pass over the same maps, once the labels are known, keeping `per_unit` masks a unit."""

    def __init__(self, results: list[UnitLabel], probe: BrodenSet, per_unit: int = 3) -> None:
        number = {name: n for n, name in enumerate(probe.names) if name}
        self.label = torch.tensor([number.get(r.label, 0) for r in results])
        self.per_unit = per_unit
        self.best: dict[int, list[tuple[float, int, np.ndarray]]] = {r.unit: [] for r in results if r.label}

    def add(self, probe: BrodenSet, index: int, maps: torch.Tensor, thresholds: torch.Tensor) -> None:
        image = probe.images[index]
        live, mask = unit_masks(maps, thresholds, image.height, image.width, among=self.label > 0)  # U' x sh x sw
        if not len(live):
            return
        layers = torch.from_numpy(probe.pixel_layers(image))
        scalars = {s for values in image.scalars for s in values}
        labels = self.label[live]
        on_label = (layers[None] == labels[:, None, None, None]).any(dim=1)  # U' x sh x sw
        hits = (mask & on_label).flatten(1).sum(dim=1).to(torch.float64)
        hits += torch.tensor([float(int(lab) in scalars) for lab in labels]) * mask.flatten(1).sum(dim=1)
        for j, unit in enumerate(live.tolist()):
            if hits[j] <= 0:
                continue
            kept = self.best[unit]
            if len(kept) < self.per_unit or hits[j] > kept[-1][0]:
                kept.append((float(hits[j]), index, mask[j].numpy()))
                kept.sort(key=lambda item: (-item[0], item[1]))
                del kept[self.per_unit :]
