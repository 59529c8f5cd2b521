"""Stage 3: the empirical receptive field of each unit, by occlusion (METHOD section 3).

One sweep of an image serves every unit that has the image among its top images: its cost belongs
to the image, never to (unit, image) pairs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.activations import model_device, recording, run
from pipeline.networks import Preprocessing
from pipeline.occluders import OcclusionSettings, Targets, occluder_grid, occluder_noise
from pipeline.occlusion_cone import ConePlan, cone_is_cheaper, cone_occlusion_sweep, cone_plans

__all__ = [
    "OcclusionSettings",
    "Targets",
    "average_rf",
    "discrepancy_to_pixels",
    "occluder_grid",
    "occlusion_sweep",
    "occlusion_sweep_full",
    "recentre",
    "rf_extent",
    "rf_size_px",
]


def occlusion_sweep(
    model: nn.Module,
    image: torch.Tensor,
    targets: dict[str, Targets],
    prep: Preprocessing,
    settings: OcclusionSettings,
    seed: int,
) -> dict[str, np.ndarray]:
    """Discrepancy per occluder position (T x G x G, G occluders per side) for every target unit, by
    the way `sweep_plans` chooses; both give the same numbers (to float rounding), on the CPU or on
    CUDA."""
    plans = sweep_plans(model, image.shape[-1], targets, settings)
    if plans is None:
        return occlusion_sweep_full(model, image, targets, prep, settings, seed)
    return cone_occlusion_sweep(model, image, targets, prep, settings, seed, plans=plans)


def sweep_plans(
    model: nn.Module, input_size: int, targets: dict[str, Targets], settings: OcclusionSettings
) -> dict[str, ConePlan] | None:
    """The one place that chooses how to sweep: computed only inside each occluder's forward cone and
    the targets' backward cones (`occlusion_cone`; these are its plans) when the cone sweep can follow
    the network's graph and counts fewer multiply-adds than full passes (`cone_is_cheaper`); None: by
    full forward passes of every occluded copy."""
    plans = cone_plans(model, input_size, list(targets), settings)
    if plans is None or not cone_is_cheaper(plans, targets, model_device(model)):
        return None
    return plans


def occlusion_sweep_full(
    model: nn.Module,
    image: torch.Tensor,
    targets: dict[str, Targets],
    prep: Preprocessing,
    settings: OcclusionSettings,
    seed: int,
) -> dict[str, np.ndarray]:
    """The sweep by full forward passes of every occluded copy: any network, any device.

    `discrepancy_to_pixels` turns them into image-pixel maps; the grid is what is worth storing.

    Discrepancy = |activation at the unit's argmax in the original - the same in an occluded copy|.
    Occluders hold uniform random pixel values, drawn from `seed`, so a sweep is reproducible.
    """
    size = image.shape[-1]
    side, copies = occluder_grid(size, settings)
    device = model_device(model)
    image = image.to(device)
    targets = {name: Targets(*(v.to(device) for v in (t.units, t.ys, t.xs))) for name, t in targets.items()}

    def gather(name: str, out: torch.Tensor) -> torch.Tensor:
        t = targets[name]
        return out[:, t.units, t.ys, t.xs].cpu()  # N x T (advanced indexing copies)

    found: dict[str, list[torch.Tensor]] = {name: [] for name in targets}
    with recording(model, list(targets), gather) as records, torch.inference_mode():
        original = {name: value.clone() for name, value in run(model, image[None], records).items()}
        positions = torch.arange(copies)
        batches = zip(range(0, copies, settings.batch_size), occluder_noise(size, settings, prep, seed), strict=True)
        for start, noise in batches:
            batch = positions[start : start + settings.batch_size]
            x = image.repeat(len(batch), 1, 1, 1)
            noise = noise.to(device)
            for j, pos in enumerate(batch.tolist()):
                y0, x0 = (pos // side) * settings.stride, (pos % side) * settings.stride
                x[j, :, y0 : y0 + settings.size, x0 : x0 + settings.size] = noise[j]
            for name, value in run(model, x, records).items():
                found[name].append((value - original[name]).abs().float())
    return {name: torch.cat(found[name]).T.reshape(-1, side, side).numpy() for name in targets}


def discrepancy_to_pixels(grid: np.ndarray, size: int, settings: OcclusionSettings) -> np.ndarray:
    """Occluder-grid discrepancies (T x G x G) to per-pixel maps (T x S x S) of an S-pixel image."""
    side = grid.shape[-1]
    values = torch.from_numpy(np.asarray(grid, dtype=np.float32)).reshape(-1, 1, side, side)  # T x 1 x G x G
    if settings.spread:
        ones = torch.ones(1, 1, settings.size, settings.size)
        total = F.conv_transpose2d(values, ones, stride=settings.stride)
        count = F.conv_transpose2d(torch.ones(1, 1, side, side), ones, stride=settings.stride)
        maps = total / count.clamp(min=1)
        offset = 0
    else:
        maps = torch.zeros(values.shape[0], 1, (side - 1) * settings.stride + 1, (side - 1) * settings.stride + 1)
        maps[:, :, :: settings.stride, :: settings.stride] = values
        offset = settings.size // 2
    out = torch.zeros(values.shape[0], size, size)
    h = min(size - offset, maps.shape[-1])
    out[:, offset : offset + h, offset : offset + h] = maps[:, 0, :h, :h]
    return out.numpy()


def recentre(discrepancy: np.ndarray, cy: int, cx: int) -> np.ndarray:
    """Place an S x S map on a (2S-1) x (2S-1) canvas so that pixel (cy, cx) sits at its centre."""
    size = discrepancy.shape[0]
    canvas = np.zeros((2 * size - 1, 2 * size - 1), dtype=np.float32)
    cy, cx = min(max(cy, 0), size - 1), min(max(cx, 0), size - 1)
    top, left = size - 1 - cy, size - 1 - cx
    canvas[top : top + size, left : left + size] = discrepancy
    return canvas


def average_rf(discrepancies: list[np.ndarray], centres: list[tuple[int, int]]) -> np.ndarray:
    """The unit's empirical RF: its images' discrepancy maps, re-centred on the argmax, averaged."""
    if not discrepancies:
        raise ValueError("No discrepancy maps to average.")
    total = np.zeros_like(recentre(discrepancies[0], 0, 0))
    for disc, (cy, cx) in zip(discrepancies, centres, strict=True):
        total += recentre(disc, cy, cx)
    return total / len(discrepancies)


def rf_extent(rf: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The RF's support: pixels at or above `threshold` x its maximum (empty for a flat map)."""
    top = float(rf.max())
    if top <= 0:
        return np.zeros_like(rf, dtype=bool)
    return rf >= threshold * top


def rf_size_px(rf: np.ndarray, threshold: float = 0.5) -> float:
    """Empirical RF size: the side of the square with the area of the thresholded RF.

    Thresholding at a share of the maximum, rather than a share of the mass, keeps the figure
    from growing with the small discrepancies that noise leaves far from the centre.
    """
    return float(np.sqrt(rf_extent(rf, threshold).sum()))
