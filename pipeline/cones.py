"""The geometry of the cone sweep on a network's graph (`pipeline.graph`): per occluder, the box of
each node's map that its change can reach (forward cone), optionally within one target position's
backward cone, and the channels each node must carry for the target units. Pure index arithmetic;
`occlusion_cone` does the computing.

Boxes are planned per axis and per grid coordinate of the occluders (rows and columns of the grid
move independently), so a box is a fixed side plus one start per grid row (or column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pipeline.geometry import Band, Box, Layout, node_windows
from pipeline.graph import Graph

Channels = tuple[int, ...] | None  # None: every channel of the node


@dataclass(frozen=True)
class Need:
    """What one node must compute for the target units: `channels` of its output (None: every
    channel). A node that no target needs has no Need at all (None in `channel_needs`' list)."""

    channels: Channels = None

    def count(self) -> int | None:
        """How many channels (None: every channel)."""
        return None if self.channels is None else len(self.channels)

    def merged(self, other: Need) -> Need:
        if self.channels is None or other.channels is None:
            return Need(None)
        return Need(tuple(sorted(set(self.channels) | set(other.channels))))


def unsupported(graph: Graph) -> str:
    """Why the cone sweep cannot follow this graph ('' when it can)."""
    for node in graph.nodes:
        m = node.module
        if node.kind == "other":
            return f"{node.name} ({node.why}) is not a layer the cone sweep knows"
        if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
            return f"{node.name} pads with {m.padding_mode!r}, not zeros"
        if isinstance(m, nn.MaxPool2d) and m.return_indices:
            return f"{node.name} returns indices"
        if isinstance(m, nn.AvgPool2d) and (
            m.ceil_mode or m.divisor_override or (not m.count_include_pad and m.padding)
        ):
            return f"{node.name} averages over windows of unequal size (ceil mode or padding not counted)"
        if isinstance(m, nn.ConstantPad2d) and m.value != 0:
            return f"{node.name} pads with {m.value}, not zeros"
        if isinstance(m, nn.AdaptiveMaxPool2d | nn.AdaptiveAvgPool2d):
            size_in, size_out = graph.nodes[node.inputs[0]].shape[1:], node.shape[1:]
            if any(n % o for n, o in zip(size_in, size_out, strict=True)):
                return f"{node.name} pools windows of unequal size"
        if node.kind != "input" and not node.shape[0]:
            return f"{node.name} has no spatial map"
    return ""


def layouts(graph: Graph) -> list[Layout]:
    out = []
    for i, node in enumerate(graph.nodes):
        first = graph.nodes[node.inputs[0]] if node.inputs else node
        windows = node_windows(graph, i) if node.kind == "window" else None
        c_in = sum(graph.nodes[j].shape[0] for j in node.inputs) if node.kind == "cat" else first.shape[0]
        size_in, size_out = (first.shape[1], first.shape[2]), (node.shape[1], node.shape[2])
        out.append(Layout(node, windows, size_in, size_out, c_in or 3, node.shape[0]))
    return out


def forward_range(layout: Layout, axis: int, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output positions whose window meets input positions lo..hi (inclusive), per grid coordinate."""
    if layout.windows is None:
        return lo, hi
    w, n = layout.windows[axis], layout.size_out[axis]
    out_lo = torch.clamp(torch.div(lo + w.pad - w.extent + w.stride, w.stride, rounding_mode="floor"), min=0)
    out_hi = torch.clamp(torch.div(hi + w.pad, w.stride, rounding_mode="floor"), max=n - 1)
    return out_lo, out_hi


def backward_range(layout: Layout, axis: int, lo: int, hi: int) -> tuple[int, int]:
    """Input positions that output positions lo..hi read."""
    if layout.windows is None:
        return lo, hi
    w = layout.windows[axis]
    return max(0, lo * w.stride - w.pad), min(layout.size_in[axis] - 1, hi * w.stride - w.pad + w.extent - 1)


def forward_ranges(graph: Graph, lay: list[Layout], lo: torch.Tensor, hi: torch.Tensor) -> list[list[tuple]]:
    """Per node and axis, the (lo, hi) positions each occluder grid coordinate can change."""
    ranges: list[list[tuple]] = []
    for node, layout in zip(graph.nodes, lay, strict=True):
        if node.kind == "input":
            ranges.append([(lo, hi), (lo, hi)])
            continue
        axes = []
        for axis in range(2):
            parts = [ranges[j][axis] for j in node.inputs]
            a = torch.stack([p[0] for p in parts]).min(0).values
            b = torch.stack([p[1] for p in parts]).max(0).values
            axes.append(forward_range(layout, axis, a, b))
        ranges.append(axes)
    return ranges


def backward_limits(graph: Graph, lay: list[Layout], target: int, position: tuple[int, int]) -> list[list]:
    """Per node and axis, the (first, last) positions the target position reads (None: it reads none)."""
    limits: list[list] = [[None, None] for _ in graph.nodes]
    limits[target] = [(position[0], position[0]), (position[1], position[1])]
    for i in range(target, 0, -1):
        if limits[i][0] is None:
            continue
        for axis in range(2):
            a, b = backward_range(lay[i], axis, *limits[i][axis])
            for j in graph.nodes[i].inputs:
                old = limits[j][axis]
                limits[j][axis] = (a, b) if old is None else (min(old[0], a), max(old[1], b))
    return limits


def boxes(
    lay: list[Layout],
    ranges: list[list[tuple]],
    limits: list[list] | None,
    size: int,
    tile: tuple[Band, Band] | None = None,
) -> list[tuple[Box, Box]]:
    """Per node, boxes that hold each occluder's forward cone within the limits (None: whole maps),
    sized for the occluders of one tile of the grid (None: all). The input's box is the occluder."""
    out = []
    for i, layout in enumerate(lay):
        axes = []
        for axis in range(2):
            lo, hi = ranges[i][axis]
            if i == 0:
                axes.append(Box(size, lo))
                continue
            if limits is None or limits[i][axis] is None:
                first, last = 0, layout.size_out[axis] - 1
            else:
                first, last = limits[i][axis]
            span = last - first + 1
            band = slice(*tile[axis]) if tile else slice(None)
            side = max(1, min(int((hi[band] - lo[band]).max()) + 1, span))
            axes.append(Box(side, torch.clamp(lo, min=first, max=first + span - side)))
        out.append((axes[0], axes[1]))
    return out


# A tile's fixed cost (Python and copies per node and batch), in multiply-adds: about 0.1 ms.
TILE_OVERHEAD = 1e7


def tiling(lay: list[Layout], ranges: list[list[tuple]], most: int = 6) -> list[tuple[Band, Band]]:
    """The occluder grid cut into tiles whose boxes fit their own occluders.

    A box must hold the widest forward cone among the occluders it is computed for, and cones are
    clipped by the map's edges: an occluder near the image's edge changes a smaller part of every
    deep map than one in the middle. One box for the whole grid computes the middle's size for all
    (ResNet-18 layer4: 1.2x the multiply-adds of boxes fitted per edge band). Each axis is cut into
    bands by dynamic programming on the clipped cone sizes, and the count of bands is the one
    whose estimated multiply-adds plus a fixed cost per tile are least."""
    n, side = len(lay), len(ranges[0][0][0])
    weight = np.array([0.0] + [lay[i].madds(1) for i in range(1, n)])
    lengths = [
        np.array(
            [[0] * side] + [(ranges[i][axis][1] - ranges[i][axis][0] + 1).tolist() for i in range(1, n)], dtype=float
        )
        for axis in range(2)
    ]

    def spread(axis: int, bands: list[Band]) -> np.ndarray:  # per node: sum over bands of count x widest
        return sum((b - a) * lengths[axis][:, a:b].max(1) for a, b in bands)

    best: tuple[float, list[Band], list[Band]] | None = None
    for k in range(1, min(most, side) + 1):
        # each axis weighs a node's multiply-adds by its mean cone width on the other axis
        ys, xs = (_bands(lengths[axis], weight * lengths[1 - axis].mean(1), k) for axis in range(2))
        cost = float(weight @ (spread(0, ys) * spread(1, xs))) + TILE_OVERHEAD * n * k * k
        if best is None or cost < best[0]:
            best = (cost, ys, xs)
    assert best is not None  # side >= 1: at least one count of bands was tried
    return [(y, x) for y in best[1] for x in best[2]]


def _bands(lengths: np.ndarray, weight: np.ndarray, count: int) -> list[Band]:
    """`count` consecutive bands of grid coordinates with the least sum over bands of
    (coordinates x weighted widest cone), the one-axis share of the boxes' multiply-adds."""
    side = lengths.shape[1]
    cost = np.full((side + 1, side + 1), np.inf)
    for a in range(side):
        widest = np.maximum.accumulate(lengths[:, a:], axis=1)  # nodes x (side - a)
        cost[a, a + 1 :] = np.arange(1, side - a + 1) * (weight @ widest)
    best = np.full((count + 1, side + 1), np.inf)
    best[0, 0] = 0.0
    back = np.zeros((count + 1, side + 1), dtype=int)
    for k in range(1, count + 1):
        for b in range(1, side + 1):
            options = best[k - 1, :b] + cost[:b, b]
            back[k, b] = int(np.argmin(options))
            best[k, b] = options[back[k, b]]
    bands, b = [], side
    for k in range(count, 0, -1):
        bands.append((int(back[k, b]), b))
        b = int(back[k, b])
    return bands[::-1]


def channel_needs(graph: Graph, target: int, units: list[int]) -> list[Need | None]:
    """What each node must compute so that the target's `units` come out right: a convolution or LRN
    needs all its input's channels; per-channel layers, pools and adds pass the set on; a
    concatenation hands each input its part. None marks a node that no target needs (a
    concatenation part with no target channel, or a node after the target)."""
    needs: list[Need | None] = [None] * len(graph.nodes)
    needs[target] = Need(tuple(sorted(set(units))))
    for i in range(target, 0, -1):
        need = needs[i]
        if need is None:
            continue
        node = graph.nodes[i]
        if node.kind == "cat":
            asks = [(j, Need(part)) for j, part in cat_parts(graph, i, need.channels)]
        else:
            asks = [(j, need if node.channelwise else Need(None)) for j in node.inputs]
        for j, ask in asks:
            old = needs[j]
            needs[j] = ask if old is None else old.merged(ask)
    return needs


def count_madds(graph: Graph, target: int) -> float:
    """Multiply-adds of one full forward up to the target (the baseline's work)."""
    return sum(layout.madds(layout.size_out[0] * layout.size_out[1]) for layout in layouts(graph)[1 : target + 1])


def cat_parts(graph: Graph, i: int, need: Channels) -> list[tuple[int, Channels]]:
    """A concatenation's inputs with the channels asked of each (inputs asked for none left out)."""
    parts, offset = [], 0
    for j in graph.nodes[i].inputs:
        c = graph.nodes[j].shape[0]
        ask = None if need is None else tuple(u - offset for u in need if offset <= u < offset + c)
        if ask != ():
            parts.append((j, ask))
        offset += c
    return parts
