"""The geometry of the cone sweep: a feature chain as square layers, and per occluder the box of
each layer's map that its change can reach (forward cone), optionally within a target position's
backward cone. Pure index arithmetic; `occlusion_cone` does the computing."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Step:
    """One layer of the chain, as the cones see it (square maps, square windows)."""

    module: nn.Module
    kind: str  # "conv", "pool" or "point"
    k: int = 1
    st: int = 1
    pd: int = 0
    size_in: int = 0
    size_out: int = 0
    c_in: int = 0
    c_out: int = 0

    def madds(self, area: int, channels: int | None = None) -> float:
        """Multiply-adds to produce `area` output positions (of `channels` output channels)."""
        out = self.c_out if channels is None else channels
        if self.kind == "conv":
            return area * out * self.c_in / self.module.groups * self.k * self.k
        return area * out * (self.k * self.k if self.kind == "pool" else 1)


def _pair(value) -> int:
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ValueError("non-square")
        return int(value[0])
    return int(value)


def feature_chain(model: nn.Module, names: list[str]) -> tuple[nn.Sequential, list[int]] | None:
    """The Sequential the targets live in and their indices in it, when the cone sweep can run it."""
    prefix = getattr(model, "feature_chain", None)
    if not prefix or not names:
        return None
    chain = dict(model.named_modules()).get(prefix)
    if not isinstance(chain, nn.Sequential):
        return None
    indices = []
    for name in names:
        head, _, tail = name.rpartition(".")
        if head != prefix or not tail.isdigit():
            return None
        indices.append(int(tail))
    for module in list(chain)[: max(indices) + 1]:
        if isinstance(module, nn.Conv2d):
            if module.dilation != (1, 1) or module.padding_mode != "zeros" or isinstance(module.padding, str):
                return None
        elif isinstance(module, nn.MaxPool2d):
            if module.ceil_mode or _pair(module.dilation) != 1:
                return None
        elif not isinstance(module, nn.ReLU | nn.LocalResponseNorm | nn.Dropout | nn.Identity):
            return None
    return chain, indices


def chain_steps(chain: nn.Sequential, last: int, size: int, channels: int) -> list[Step]:
    steps = []
    for module in list(chain)[: last + 1]:
        if isinstance(module, nn.Conv2d):
            k, st, pd = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
            step = Step(module, "conv", k, st, pd, c_in=channels, c_out=module.out_channels)
        elif isinstance(module, nn.MaxPool2d):
            k, st = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
            step = Step(module, "pool", k, st, _pair(module.padding), c_in=channels, c_out=channels)
        else:
            step = Step(module, "point", c_in=channels, c_out=channels)
        step.size_in = size
        step.size_out = (size + 2 * step.pd - step.k) // step.st + 1
        size, channels = step.size_out, step.c_out
        steps.append(step)
    return steps


def forward_range(step: Step, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output positions whose window meets input positions lo..hi (inclusive), per occluder."""
    if step.kind == "point":
        return lo, hi
    out_lo = torch.clamp(torch.div(lo + step.pd - step.k + step.st, step.st, rounding_mode="floor"), min=0)
    out_hi = torch.clamp(torch.div(hi + step.pd, step.st, rounding_mode="floor"), max=step.size_out - 1)
    return out_lo, out_hi


def backward_range(step: Step, lo: int, hi: int) -> tuple[int, int]:
    """Input positions that output positions lo..hi read."""
    if step.kind == "point":
        return lo, hi
    return max(0, lo * step.st - step.pd), min(step.size_in - 1, hi * step.st - step.pd + step.k - 1)


def _axis_boxes(steps: list[Step], lo: torch.Tensor, hi: torch.Tensor, limits: list[tuple[int, int]] | None
                ) -> list[tuple[int, torch.Tensor]]:
    """Per layer, on one axis: a fixed side and, per occluder, a start, such that the box holds the
    occluder's forward cone intersected with `limits` (a backward cone; None: the whole map)."""
    boxes = []
    for i, step in enumerate(steps):
        lo, hi = forward_range(step, lo, hi)
        first, last = limits[i] if limits else (0, step.size_out - 1)
        span = last - first + 1
        side = max(1, min(int((hi - lo).max()) + 1, span))
        boxes.append((side, torch.clamp(lo, min=first, max=first + span - side)))
    return boxes


@dataclass
class Boxes:
    """A layer's box: sides, and per occluder row (y) and column (x) of the grid, the start."""

    sy: int
    sx: int
    y: torch.Tensor
    x: torch.Tensor


def layer_boxes(steps: list[Step], lo: torch.Tensor, hi: torch.Tensor, limits: tuple[list, list] | None
                 ) -> list[Boxes]:
    rows = _axis_boxes(steps, lo, hi, limits[0] if limits else None)
    cols = _axis_boxes(steps, lo, hi, limits[1] if limits else None)
    return [Boxes(r[0], c[0], r[1], c[1]) for r, c in zip(rows, cols, strict=True)]


def backward_cone(steps: list[Step], position: tuple[int, int]) -> tuple[list, list]:
    """The backward cone of one target position at every layer's output, rows and columns."""
    out = []
    for coord in position:
        ranges, r = [], (coord, coord)
        for step in reversed(steps):
            ranges.append(r)
            r = backward_range(step, *r)
        out.append(list(reversed(ranges)))
    return out[0], out[1]


def count_madds(model_chain: nn.Sequential, index: int, size: int, channels: int = 3) -> float:
    """Multiply-adds of one full forward through the chain up to `index` (the baseline's work)."""
    return sum(step.madds(step.size_out * step.size_out) for step in chain_steps(model_chain, index, size, channels))
