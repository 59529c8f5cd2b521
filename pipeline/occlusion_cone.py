"""Stage 3 at the limit: the occlusion sweep computed only where it can change anything.

An occluder changes only a small window of each feature map (its forward cone); a target unit
reads one position of its map, which depends only on a window of each earlier map (its backward
cone). Starting from the unchanged original maps, each layer is evaluated, batched over occluder
positions, on a fixed-size box that holds the intersection of the two cones; values outside it are
the original's. Occluders outside every target's receptive field are skipped (their discrepancy is
zero), and the last convolution computes only the target units' channels.

A stride-1 convolution whose box reads more unchanged input than changed input is computed
incrementally: the original output plus the input's change scattered through the kernel
(`conv_transpose2d`). The change is zero outside the previous box, so this skips the products of
unchanged inputs, which the box recomputation would redo (AlexNet's conv2-conv4: 1.7x-4x fewer).

Early layers are shared by all target positions (forward cone only); from a split layer on, each
distinct target position continues on its own, much smaller, backward cone. The split is chosen
per image by counting multiply-adds. Works for networks whose layers up to the targets are one
`nn.Sequential` of Conv2d, MaxPool2d, ReLU, LocalResponseNorm and Dropout (`feature_chain`);
`receptive_field.occlusion_sweep` falls back to full forward passes for any other network.
The box geometry lives in `pipeline.cones`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.cones import Boxes, Step, backward_cone, chain_steps, feature_chain, forward_range, layer_boxes
from pipeline.images import pixels_to_input


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


def _runs(*keys: torch.Tensor) -> list[tuple[int, int, list[int]]]:
    """Consecutive occluders that share the same keys, as (start, stop, keys). Occluders come in
    row-major order and boxes move monotonically with them, so a batch has few runs, and each run is
    handled as one block copy instead of element-by-element indexing."""
    stacked = torch.stack(keys, 1)
    starts = [0, *(torch.nonzero((stacked[1:] != stacked[:-1]).any(1)).flatten() + 1).tolist()]
    values = stacked[starts].tolist()
    return [(a, b, v) for a, b, v in zip(starts, [*starts[1:], len(stacked)], values, strict=True)]


def _crops(plane: torch.Tensor, y: torch.Tensor, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Per occluder, the h x w crop of a C x H x W map at (y, x). N x C x h x w."""
    # Channels-last, as oneDNN's convolutions prefer: the whole sweep runs 1.3x faster than with NCHW.
    out = torch.empty(len(y), plane.shape[0], h, w, dtype=plane.dtype, device=plane.device,
                      memory_format=torch.channels_last)
    for a, b, (top, left) in _runs(y, x):
        out[a:b] = plane[:, top:top + h, left:left + w]
    return out


def _paste(out: torch.Tensor, part: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, add: bool = False) -> None:
    """Write (or add) each occluder's `part` into its `out` with its top-left at (oy, ox), clipped."""
    h, w = out.shape[-2:]
    ph, pw = part.shape[-2:]
    for a, b, (dy, dx) in _runs(oy, ox):
        r0, r1, c0, c1 = max(0, dy), min(h, dy + ph), max(0, dx), min(w, dx + pw)
        if r0 >= r1 or c0 >= c1:
            continue
        src = part[a:b, :, r0 - dy:r1 - dy, c0 - dx:c1 - dx]
        if add:
            out[a:b, :, r0:r1, c0:c1] += src
        else:
            out[a:b, :, r0:r1, c0:c1] = src


def _window(step: Step, padded: torch.Tensor, prev: torch.Tensor, prev_y: torch.Tensor, prev_x: torch.Tensor,
            box: Boxes, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The input a box needs: the previous layer's changed values (its box) where they fall in the
    window, the original (padded) map everywhere else. N x C x Wy x Wx."""
    st, k, pd = step.st, step.k, step.pd
    out = _crops(padded, y * st, x * st, (box.sy - 1) * st + k, (box.sx - 1) * st + k)
    _paste(out, prev, prev_y + pd - y * st, prev_x + pd - x * st)
    return out


def _transposed(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A convolution's weights as `conv_transpose2d` weights that scatter each input's change to
    the outputs that read it (taps flipped, in and out swapped within each group)."""
    out, per_in, k, _ = weight.shape
    w = weight.reshape(groups, out // groups, per_in, k, k).transpose(1, 2)
    return w.reshape(groups * per_in, out // groups, k, k).flip(-1, -2).contiguous()


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

    def __init__(self, chain: nn.Sequential, index: int, image: torch.Tensor, size: int, stride: int,
                 incremental: bool = True) -> None:
        self.steps = chain_steps(chain, index, image.shape[-1], image.shape[0])
        self.side = (image.shape[-1] - size) // stride + 1
        self.lo = torch.arange(self.side) * stride
        self.size = size
        self.hi = self.lo + size - 1
        self.padded, self.inputs, self.outputs, x = [], [], [], image[None]
        with torch.inference_mode():
            for step in self.steps:
                value = float("-inf") if step.kind == "pool" else 0.0
                self.inputs.append(x[0])
                self.padded.append(F.pad(x[0], (step.pd,) * 4, value=value) if step.pd else x[0])
                x = _apply(step, x, padding=True)
                self.outputs.append(x[0])
        self.original = x[0]
        self.incremental = incremental
        self._scatter_weights: dict = {}
        convs = [i for i, s in enumerate(self.steps) if s.kind == "conv"]
        after = self.steps[convs[-1] + 1:] if convs else []
        channelwise = all(s.kind == "pool" or isinstance(s.module, nn.ReLU | nn.Dropout | nn.Identity) for s in after)
        self.last_conv = convs[-1] if convs and channelwise else None
        self.reach = [self.lo, self.hi]
        for step in self.steps:
            self.reach = list(forward_range(step, *self.reach))
        self.shared = layer_boxes(self.steps, self.lo, self.hi, None)
        self.madds = 0.0  # multiply-adds done so far (benchmarks report the rate)

    def relevant(self, position: tuple[int, int]) -> torch.Tensor:
        """Occluders (G*G, row-major) whose forward cone reaches the position."""
        lo, hi = self.reach
        ry = (lo <= position[0]) & (position[0] <= hi)
        rx = (lo <= position[1]) & (position[1] <= hi)
        return (ry[:, None] & rx[None, :]).flatten()

    def scatters(self, step: Step, changed: int, box: Boxes) -> bool:
        """Whether a convolution is cheaper as the original plus its change, scattered from the
        `changed` input positions, than recomputed over its box (stride 1 only)."""
        return self.incremental and step.kind == "conv" and step.st == 1 and changed < box.sy * box.sx

    def cost(self, boxes: list[Boxes], first: int, stop: int, count: int, channels: int) -> float:
        total = 0.0
        for i in range(first, stop):
            area = boxes[i].sy * boxes[i].sx
            changed = boxes[i - 1].sy * boxes[i - 1].sx if i else self.size * self.size
            if self.scatters(self.steps[i], changed, boxes[i]):
                area = changed
            total += self.steps[i].madds(area, channels if i == self.last_conv else None)
        return count * total

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
                # The patch is this sweep's own copy: a ReLU may overwrite it.
                patch = patch.relu_() if isinstance(step.module, nn.ReLU) else _apply(step, patch, padding=False)
                self.madds += patch.numel()
                continue
            y, x = box.y[gy], box.x[gx]
            narrowed = channels if i == self.last_conv and channels is not None else None
            changed = patch.shape[-2] * patch.shape[-1]
            if self.scatters(step, changed, box):
                patch = self.scatter(i, patch, prev_y, prev_x, box, y, x, narrowed)
                area = changed
            else:
                # After the restricted convolution only the target channels are carried on.
                padded = self.padded[i][channels] if restricted and i > self.last_conv else self.padded[i]
                window = _window(step, padded, patch, prev_y, prev_x, box, y, x)
                weight, bias = (None, None) if narrowed is None else _restricted(step, narrowed)
                patch = _apply(step, window, padding=False, weight=weight, bias=bias)
                area = box.sy * box.sx
            self.madds += step.madds(area, patch.shape[1]) * len(ids)
            prev_y, prev_x = y, x
        return patch, prev_y, prev_x

    def scatter(self, i: int, patch: torch.Tensor, prev_y: torch.Tensor, prev_x: torch.Tensor, box: Boxes,
                y: torch.Tensor, x: torch.Tensor, channels: torch.Tensor | None) -> torch.Tensor:
        """A stride-1 convolution over its box, incrementally: the original output plus the change
        of its input scattered through the kernel. The box reads more unchanged input positions
        than changed ones, so this does fewer multiply-adds (the change is zero elsewhere)."""
        step = self.steps[i]
        change = _crops(self.inputs[i], prev_y, prev_x, *patch.shape[-2:])
        torch.sub(patch, change, out=change)  # in place: these tensors are the sweep's biggest
        key = (i, None if channels is None else tuple(channels.tolist()))
        if key not in self._scatter_weights:  # once per layer and channel set, not per batch
            weight, groups = (step.module.weight, step.module.groups) if channels is None else (
                _restricted(step, channels)[0], 1)
            original = self.outputs[i] if channels is None else self.outputs[i][channels]
            self._scatter_weights[key] = (_transposed(weight, groups), groups, original)
        weight, groups, original = self._scatter_weights[key]
        spread = F.conv_transpose2d(change, weight, groups=groups)
        out = _crops(original, y, x, box.sy, box.sx)
        # spread[..., 0, 0] lands on output position (prev_y + pd - (k - 1), prev_x + pd - (k - 1)).
        reach = step.pd - (step.k - 1)
        _paste(out, spread, prev_y + reach - y, prev_x + reach - x, add=True)
        return out

    def discrepancy(self, units: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, noise: torch.Tensor,
                    split: int | None = None, batch: int = 256) -> torch.Tensor:
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
            group["boxes"] = layer_boxes(self.steps, self.lo, self.hi, backward_cone(self.steps, p))
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
                         split: int | None = None, incremental: bool = True) -> dict[str, np.ndarray] | None:
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
        sweep = ConeSweep(chain, index, image, settings.size, settings.stride, incremental)
        grid = sweep.discrepancy(t.units.cpu(), t.ys.cpu(), t.xs.cpu(), noise, split=split)
        out[name] = grid.reshape(-1, side, side).numpy()
    return out
