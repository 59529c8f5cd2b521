"""The occluders of METHOD section 3, shared by both ways of sweeping (full passes in
`receptive_field`, the cone sweep in `occlusion_cone`): their settings, their grid, their random
contents (drawn once, the same for both), and the units a sweep watches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from pipeline.images import pixels_to_input
from pipeline.networks import Preprocessing


@dataclass(frozen=True)
class OcclusionSettings:
    size: int = 11
    stride: int = 3
    batch_size: int = 128
    # True: each pixel gets the mean discrepancy of the occluders that cover it; False: the
    # discrepancy is put at each occluder's centre pixel only.
    spread: bool = True


@dataclass
class Targets:
    """The units to watch in one layer during a sweep: unit index and argmax (y, x) on its map."""

    units: torch.Tensor  # T
    ys: torch.Tensor  # T
    xs: torch.Tensor  # T


def occluder_grid(input_size: int, settings: OcclusionSettings) -> tuple[int, int]:
    """Occluder positions per side and how many copies of the image a sweep makes."""
    side = (input_size - settings.size) // settings.stride + 1
    return side, side * side


def occluder_corners(input_size: int, settings: OcclusionSettings) -> torch.Tensor:
    """The first pixel of each occluder position on one axis (both axes are alike)."""
    return torch.arange(occluder_grid(input_size, settings)[0]) * settings.stride


def occluder_noise(
    input_size: int, settings: OcclusionSettings, prep: Preprocessing, seed: int
) -> Iterator[torch.Tensor]:
    """Each occluder's contents, uniform random pixels in the network's input units, a batch of
    `settings.batch_size` at a time in grid order (row-major): a sweep is reproducible from `seed`,
    and either way of sweeping sees the same occluders."""
    copies = occluder_grid(input_size, settings)[1]
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, copies, settings.batch_size):
        count = min(settings.batch_size, copies - start)
        yield pixels_to_input(torch.rand(count, 3, settings.size, settings.size, generator=generator), prep)
