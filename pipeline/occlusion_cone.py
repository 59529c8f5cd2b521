"""Stage 3 at the limit: the occlusion sweep computed only where it can change anything.

An occluder changes only a small window of each feature map (its forward cone); a target unit
reads one position of its map, which depends only on a window of each earlier map (its backward
cone). Starting from the unchanged original maps, each layer is evaluated, batched over occluder
positions, on a fixed-size box that holds the intersection of the two cones; values outside it are
the original's. Occluders outside every target's receptive field are skipped (their discrepancy is
zero), and the last convolution computes only the target units' channels.

Early layers are shared by all target positions (forward cone only); from a split layer on, each
distinct target position continues on its own, much smaller, backward cone. The split is chosen
per image by counting multiply-adds. Works for networks whose layers up to the targets are one
`nn.Sequential` of Conv2d, MaxPool2d, ReLU, LocalResponseNorm and Dropout (`feature_chain`);
`receptive_field.occlusion_sweep` falls back to full forward passes for any other network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.images import pixels_to_input


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


def _steps(chain: nn.Sequential, last: int, size: int, channels: int) -> list[Step]:
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


def _apply(step: Step, x: torch.Tensor, padding: bool, weight: torch.Tensor | None = None,
           bias: torch.Tensor | None = None) -> torch.Tensor:
    m = step.module
    pd = step.pd if padding else 0
    if step.kind == "conv":
        groups = m.groups if weight is None else 1
        return F.conv2d(x, m.weight if weight is None else weight, m.bias if weight is None else bias,
                        step.st, pd, 1, groups)
    if step.kind == "pool":
        return F.max_pool2d(x, step.k, step.st, pd)
    if isinstance(m, nn.ReLU):
        return F.relu(x)
    if isinstance(m, nn.LocalResponseNorm):
        return m(x)
    return x  # Dropout (eval) and Identity


def _forward_range(step: Step, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output positions whose window meets input positions lo..hi (inclusive), per occluder."""
    if step.kind == "point":
        return lo, hi
    out_lo = torch.clamp(torch.div(lo + step.pd - step.k + step.st, step.st, rounding_mode="floor"), min=0)
    out_hi = torch.clamp(torch.div(hi + step.pd, step.st, rounding_mode="floor"), max=step.size_out - 1)
    return out_lo, out_hi


def _backward_range(step: Step, lo: int, hi: int) -> tuple[int, int]:
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
        lo, hi = _forward_range(step, lo, hi)
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


def _layer_boxes(steps: list[Step], lo: torch.Tensor, hi: torch.Tensor, limits: tuple[list, list] | None
                 ) -> list[Boxes]:
    rows = _axis_boxes(steps, lo, hi, limits[0] if limits else None)
    cols = _axis_boxes(steps, lo, hi, limits[1] if limits else None)
    return [Boxes(r[0], c[0], r[1], c[1]) for r, c in zip(rows, cols, strict=True)]


def _limits(steps: list[Step], position: tuple[int, int]) -> tuple[list, list]:
    """The backward cone of one target position at every layer's output, rows and columns."""
    out = []
    for coord in position:
        ranges, r = [], (coord, coord)
        for step in reversed(steps):
            ranges.append(r)
            r = _backward_range(step, *r)
        out.append(list(reversed(ranges)))
    return out[0], out[1]


def _window(step: Step, padded: torch.Tensor, prev: torch.Tensor, prev_y: torch.Tensor, prev_x: torch.Tensor,
            box: Boxes, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The input a box needs: the previous layer's changed values (its box) where they fall in the
    window, the original (padded) map everywhere else. N x C x Wy x Wx.

    The originals come from one gather over a strided view of every window; the changed patches are
    pasted by slicing, one slice per distinct offset of patch in window (a handful per layer), which
    copies blocks instead of indexing element by element."""
    st, k, pd = step.st, step.k, step.pd
    wy, wx = (box.sy - 1) * st + k, (box.sx - 1) * st + k
    every = padded.unfold(1, wy, 1).unfold(2, wx, 1).permute(1, 2, 0, 3, 4)  # Y x X x C x Wy x Wx, a view
    out = every[y * st, x * st]
    ph, pw = prev.shape[-2:]
    offsets = torch.stack([prev_y + pd - y * st, prev_x + pd - x * st], 1)
    distinct, group = torch.unique(offsets, dim=0, return_inverse=True)
    for j, (oy, ox) in enumerate(distinct.tolist()):
        r0, r1, c0, c1 = max(0, oy), min(wy, oy + ph), max(0, ox), min(wx, ox + pw)
        if r0 >= r1 or c0 >= c1:
            continue
        rows = slice(r0 - oy, r1 - oy)
        cols = slice(c0 - ox, c1 - ox)
        if len(distinct) == 1:
            out[:, :, r0:r1, c0:c1] = prev[:, :, rows, cols]
        else:
            members = torch.nonzero(group == j).flatten()
            out[members, :, r0:r1, c0:c1] = prev[members][:, :, rows, cols]
    return out


def _restricted(step: Step, channels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The last convolution's weights for `channels` only (grouped convolutions made dense)."""
    m = step.module
    weight = m.weight[channels]
    if m.groups > 1:
        per_in, per_out = step.c_in // m.groups, step.c_out // m.groups
        dense = weight.new_zeros(len(channels), step.c_in, step.k, step.k)
        for j, c in enumerate(channels.tolist()):
            g = c // per_out
            dense[j, g * per_in:(g + 1) * per_in] = weight[j]
        weight = dense
    return weight, None if m.bias is None else m.bias[channels]


class ConeSweep:
    """One image, one target layer: the plan (boxes, relevant occluders, split) and its run."""

    def __init__(self, chain: nn.Sequential, index: int, image: torch.Tensor, size: int, stride: int) -> None:
        self.steps = _steps(chain, index, image.shape[-1], image.shape[0])
        self.side = (image.shape[-1] - size) // stride + 1
        self.lo = torch.arange(self.side) * stride
        self.hi = self.lo + size - 1
        self.padded, x = [], image[None]
        with torch.inference_mode():
            for step in self.steps:
                value = float("-inf") if step.kind == "pool" else 0.0
                self.padded.append(F.pad(x[0], (step.pd,) * 4, value=value) if step.pd else x[0])
                x = _apply(step, x, padding=True)
        self.original = x[0]
        convs = [i for i, s in enumerate(self.steps) if s.kind == "conv"]
        after = self.steps[convs[-1] + 1:] if convs else []
        channelwise = all(s.kind == "pool" or isinstance(s.module, nn.ReLU | nn.Dropout | nn.Identity) for s in after)
        self.last_conv = convs[-1] if convs and channelwise else None
        self.reach = [self.lo, self.hi]
        for step in self.steps:
            self.reach = list(_forward_range(step, *self.reach))
        self.shared = _layer_boxes(self.steps, self.lo, self.hi, None)
        self.madds = 0.0  # multiply-adds done so far (benchmarks report the rate)

    def relevant(self, position: tuple[int, int]) -> torch.Tensor:
        """Occluders (G*G, row-major) whose forward cone reaches the position."""
        lo, hi = self.reach
        ry = (lo <= position[0]) & (position[0] <= hi)
        rx = (lo <= position[1]) & (position[1] <= hi)
        return (ry[:, None] & rx[None, :]).flatten()

    def cost(self, boxes: list[Boxes], first: int, stop: int, count: int, channels: int) -> float:
        return count * sum(self.steps[i].madds(boxes[i].sy * boxes[i].sx,
                                               channels if i == self.last_conv else None) for i in range(first, stop))

    def plan(self, groups: dict, every: torch.Tensor, all_channels: int) -> int:
        """The split layer with the fewest multiply-adds (len(steps): never split)."""
        n = len(self.steps)
        best = None
        for split in range(n + 1):
            total = self.cost(self.shared, 0, split, int(every.sum()), all_channels)
            total += sum(self.cost(g["boxes"], split, n, int(g["keep"].sum()), len(g["units"]))
                         for g in groups.values())
            if best is None or total < best[0]:
                best = (total, split)
        return best[1]

    def run_layers(self, first: int, stop: int, state: tuple, boxes: list[Boxes], ids: torch.Tensor,
                   channels: torch.Tensor | None) -> tuple:
        patch, prev_y, prev_x = state
        gy, gx = ids // self.side, ids % self.side
        restricted = self.last_conv is not None and channels is not None
        for i in range(first, stop):
            step, box = self.steps[i], boxes[i]
            if step.kind == "point":
                patch = _apply(step, patch, padding=False)
                self.madds += patch.numel()
                continue
            y, x = box.y[gy], box.x[gx]
            # After the restricted convolution only the target channels are carried on.
            padded = self.padded[i][channels] if restricted and i > self.last_conv else self.padded[i]
            window = _window(step, padded, patch, prev_y, prev_x, box, y, x)
            if i == self.last_conv and channels is not None:
                weight, bias = _restricted(step, channels)
                patch = _apply(step, window, padding=False, weight=weight, bias=bias)
            else:
                patch = _apply(step, window, padding=False)
            self.madds += step.madds(box.sy * box.sx, patch.shape[1]) * len(ids)
            prev_y, prev_x = y, x
        return patch, prev_y, prev_x

    def discrepancy(self, units: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, noise: torch.Tensor,
                    split: int | None = None, batch: int = 512) -> torch.Tensor:
        """|target - original| for every target (unit, y, x) and occluder: T x G*G."""
        n = len(self.steps)
        targets = list(zip(units.tolist(), ys.tolist(), xs.tolist(), strict=True))
        groups = {}
        for unit, y, x in targets:
            group = groups.setdefault((y, x), {"units": []})
            if unit not in group["units"]:
                group["units"].append(unit)
        for p, group in groups.items():
            group["keep"] = self.relevant(p)
            group["boxes"] = _layer_boxes(self.steps, self.lo, self.hi, _limits(self.steps, p))
        every = torch.stack([g["keep"] for g in groups.values()]).any(0)
        union = sorted({u for u, _, _ in targets})
        split = self.plan(groups, every, len(union)) if split is None else split
        result = torch.zeros(len(targets), self.side * self.side)
        chosen = torch.nonzero(every).flatten()
        with torch.inference_mode():
            for start in range(0, len(chosen), batch):
                ids = chosen[start:start + batch]
                state = (noise[ids], self.lo[ids // self.side], self.lo[ids % self.side])
                shared_channels = torch.tensor(union) if self.last_conv is not None and split > self.last_conv else None
                state = self.run_layers(0, split, state, self.shared, ids, shared_channels)
                for p, group in groups.items():
                    keep = group["keep"][ids]
                    if not bool(keep.any()):
                        continue
                    # The channels carried from the last convolution on: this position's units when it
                    # comes after the split, every target unit when it came before, all without one.
                    names = None if self.last_conv is None else group["units"] if split <= self.last_conv else union
                    sub = ids[keep]
                    out, oy, ox = self.run_layers(split, n, tuple(t[keep] for t in state), group["boxes"], sub,
                                                  None if names is None else torch.tensor(names))
                    iy, ix = p[0] - oy, p[1] - ox
                    inside = (iy >= 0) & (iy < out.shape[-2]) & (ix >= 0) & (ix < out.shape[-1])
                    iy, ix = iy.clamp(0, out.shape[-2] - 1), ix.clamp(0, out.shape[-1] - 1)
                    for row, (unit, y, x) in enumerate(targets):
                        if (y, x) != p:
                            continue
                        channel = names.index(unit) if names is not None else unit
                        value = out[torch.arange(len(sub)), channel, iy, ix]
                        change = (value - self.original[unit, y, x]).abs()
                        result[row, sub] = torch.where(inside, change, torch.zeros(())).float()
        return result


def cone_occlusion_sweep(model: nn.Module, image: torch.Tensor, targets: dict, prep, settings, seed: int,
                         split: int | None = None) -> dict[str, np.ndarray] | None:
    """`receptive_field.occlusion_sweep`'s result by the cone method, or None when the network's
    layers are not a chain it can follow. The occluders' contents are drawn exactly as there."""
    found = feature_chain(model, list(targets))
    if found is None:
        return None
    chain, indices = found
    size = image.shape[-1]
    side = (size - settings.size) // settings.stride + 1
    generator = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, side * side, settings.batch_size):
        count = min(settings.batch_size, side * side - start)
        chunks.append(pixels_to_input(torch.rand(count, 3, settings.size, settings.size, generator=generator), prep))
    noise = torch.cat(chunks)
    image = image.cpu()
    out = {}
    for name, index in zip(targets, indices, strict=True):
        t = targets[name]
        sweep = ConeSweep(chain, index, image, settings.size, settings.stride)
        grid = sweep.discrepancy(t.units.cpu(), t.ys.cpu(), t.xs.cpu(), noise, split=split)
        out[name] = grid.reshape(-1, side, side).numpy()
    return out


def count_madds(model_chain: nn.Sequential, index: int, size: int, channels: int = 3) -> float:
    """Multiply-adds of one full forward through the chain up to `index` (the baseline's work)."""
    return sum(step.madds(step.size_out * step.size_out) for step in _steps(model_chain, index, size, channels))

