"""Batched patches of feature maps for the cone sweep: per occluder, a box of a map, cut out,
pasted and scattered as block copies over runs of occluders that share a box."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline import cones


def _runs(*keys: torch.Tensor) -> list[tuple[int, int, list[int]]]:
    """Consecutive occluders that share the same keys, as (start, stop, keys). Occluders come in
    row-major order and boxes move monotonically with them, so a batch has few runs, and each run is
    handled as one block copy instead of element-by-element indexing."""
    stacked = torch.stack(keys, 1)
    starts = [0, *(torch.nonzero((stacked[1:] != stacked[:-1]).any(1)).flatten() + 1).tolist()]
    values = stacked[starts].tolist()
    return [(a, b, v) for a, b, v in zip(starts, [*starts[1:], len(stacked)], values, strict=True)]


def channels_last(plane: torch.Tensor) -> torch.Tensor:
    """A C x H x W map stored channel-fastest, as `crops` writes: cutting a box out of it then copies
    whole runs of channels instead of gathering one value per channel (ResNet-18 layer4's copies:
    3.0 s instead of 4.2 s a sweep)."""
    if plane.dim() != 3:
        return plane
    return plane[None].contiguous(memory_format=torch.channels_last)[0]


def crops(plane: torch.Tensor, y: torch.Tensor, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Per occluder, the h x w crop of a C x H x W map at (y, x). N x C x h x w."""
    # Channels-last, as oneDNN's convolutions prefer: the whole sweep runs 1.3x faster than with NCHW.
    out = torch.empty(
        len(y), plane.shape[0], h, w, dtype=plane.dtype, device=plane.device, memory_format=torch.channels_last
    )
    for a, b, (top, left) in _runs(y, x):
        out[a:b] = plane[:, top : top + h, left : left + w]
    return out


def paste(out: torch.Tensor, part: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, add: bool = False) -> None:
    """Write (or add) each occluder's `part` into its `out` with its top-left at (oy, ox), clipped."""
    h, w = out.shape[-2:]
    ph, pw = part.shape[-2:]
    for a, b, (dy, dx) in _runs(oy, ox):
        r0, r1, c0, c1 = max(0, dy), min(h, dy + ph), max(0, dx), min(w, dx + pw)
        if r0 >= r1 or c0 >= c1:
            continue
        src = part[a:b, :, r0 - dy : r1 - dy, c0 - dx : c1 - dx]
        if add:
            out[a:b, :, r0:r1, c0:c1] += src
        else:
            out[a:b, :, r0:r1, c0:c1] = src


def transposed(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A convolution's weights as `conv_transpose2d` weights that scatter each input's change to
    the outputs that read it (taps flipped, in and out swapped within each group)."""
    out, per_in, kh, kw = weight.shape
    w = weight.reshape(groups, out // groups, per_in, kh, kw).transpose(1, 2)
    return w.reshape(groups * per_in, out // groups, kh, kw).flip(-1, -2).contiguous()


def restricted(conv: nn.Conv2d, channels: cones.Channels) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """A convolution's weights, bias and groups for `channels` only (grouped convolutions made dense)."""
    if channels is None:
        return conv.weight, conv.bias, conv.groups
    index = torch.tensor(channels, device=conv.weight.device)
    weight = conv.weight[index]
    if conv.groups > 1:
        per_in, per_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
        dense = weight.new_zeros(len(channels), conv.in_channels, *weight.shape[2:])
        for j, c in enumerate(channels):
            g = c // per_out
            dense[j, g * per_in : (g + 1) * per_in] = weight[j]
        weight = dense
    return weight, None if conv.bias is None else conv.bias[index], 1


@dataclass
class Patch:
    """A node's computed box for a batch of occluders: values, top-left per occluder, channels."""

    values: torch.Tensor  # N x C' x h x w
    y: torch.Tensor  # N (CPU)
    x: torch.Tensor  # N (CPU)
    channels: cones.Channels
    owned: bool = True  # whether this node alone may overwrite `values`

    def select(self, keep: torch.Tensor) -> Patch:
        if bool(keep.all()):  # deep targets: every occluder reaches every position; share, never overwrite
            return Patch(self.values, self.y, self.x, self.channels, owned=False)
        index = torch.nonzero(keep).flatten()
        return Patch(self.values[index.to(self.values.device)], self.y[index], self.x[index], self.channels)
