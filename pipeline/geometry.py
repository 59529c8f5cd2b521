"""Geometry: every type that says where a layer's units look, and how it is read from the network's
graph (`pipeline.graph`). The traced graph, the theoretical receptive fields (`spans`,
`LayerGeometry`) and the cone sweep's boxes (`Layout`, `Box`) all speak in these types.

On one axis, position i of a node's map reads input pixels first + i*jump .. last + i*jump: windows
(convolutions, pools, padding) compose, per-position layers pass the span on, and joins (residual
adds, concatenations) take the union of their inputs' spans. Nothing here follows execution order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from pipeline.graph import Graph, Node


class GraphError(ValueError):
    """A network whose graph or geometry cannot be known; the message names the module and why."""


@dataclass(frozen=True)
class Window:
    """One axis of a sliding window: output i reads inputs i*stride - pad + j*dilation, j < kernel."""

    kernel: int = 1
    stride: int = 1
    pad: int = 0  # zeros (or -inf for max pools) before the first input; the far side follows the shape
    dilation: int = 1

    @property
    def extent(self) -> int:
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class Span:
    """On one axis, map position i reads input pixels first + i*jump .. last + i*jump."""

    first: int
    last: int
    jump: int

    @property
    def rf(self) -> int:
        return self.last - self.first + 1

    @property
    def start(self) -> float:
        return (self.first + self.last) / 2


@dataclass(frozen=True)
class LayerGeometry:
    """Where a layer's units look in the input: position i of the map is centred on `start + i * jump`.

    `rf` is the theoretical receptive field (px): the side of the box of input pixels that any path
    through the network's graph lets one unit read.
    """

    rf: int
    jump: int
    start: float
    channels: int
    height: int
    width: int

    def centre(self, y: int, x: int) -> tuple[float, float]:
        return self.start + y * self.jump, self.start + x * self.jump


@dataclass
class Layout:
    """What the cone sweep knows of one node: its windows (window nodes), sizes in and out."""

    node: Node
    windows: tuple[Window, Window] | None
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    c_in: int
    c_out: int

    def axes(self) -> tuple[Window, Window]:
        """A window node's windows on rows and columns (any other node has none: an error)."""
        if self.windows is None:
            raise GraphError(f"{self.node.name} is not a window node.")
        return self.windows

    def madds(self, area: int, channels: int | None = None) -> float:
        """Multiply-adds to produce `area` output positions of `channels` output channels."""
        out = self.c_out if channels is None else channels
        m = self.node.module
        if isinstance(m, nn.Conv2d):
            wy, wx = self.axes()
            return area * out * self.c_in / m.groups * wy.kernel * wx.kernel
        if self.node.kind == "window":
            wy, wx = self.axes()
            return area * out * wy.kernel * wx.kernel
        return area * out

    def right_pad(self, axis: int) -> int:
        """Padding after the last input so that every output window fits (ceil-mode pools, "same")."""
        w = self.axes()[axis]
        return max(0, (self.size_out[axis] - 1) * w.stride + w.extent - w.pad - self.size_in[axis])


@dataclass
class Box:
    """A node's box on one axis: a fixed side, and per grid coordinate its first position."""

    side: int
    start: torch.Tensor


Band = tuple[int, int]  # grid coordinates start..stop-1 on one axis


def node_windows(graph: Graph, i: int) -> tuple[Window, Window]:
    """A window node's windows; an adaptive pool's come from its input and output sizes."""
    node = graph.nodes[i]
    if node.windows is not None:
        return node.windows
    size_in, size_out = graph.nodes[node.inputs[0]].shape[1:], node.shape[1:]
    windows = []
    for n, o in zip(size_in, size_out, strict=True):
        if n % o:
            raise GraphError(
                f"{node.name}: an adaptive pool from {n} to {o} positions has windows of unequal "
                "size, so its units have no single receptive field geometry."
            )
        windows.append(Window(n // o, n // o))
    return windows[0], windows[1]


def spans(graph: Graph) -> list[tuple[Span, Span]]:
    """Every node's span on rows and columns: windows compose, joins take the union of their inputs."""
    out: list[tuple[Span, Span]] = []
    for i, node in enumerate(graph.nodes):
        if node.kind == "input":
            out.append((Span(0, 0, 1), Span(0, 0, 1)))
        elif node.kind == "point":
            out.append(out[node.inputs[0]])
        elif node.kind == "window":
            axes = []
            for span, w in zip(out[node.inputs[0]], node_windows(graph, i), strict=True):
                first = span.first - w.pad * span.jump
                axes.append(Span(first, span.last + (w.extent - 1 - w.pad) * span.jump, span.jump * w.stride))
            out.append((axes[0], axes[1]))
        elif node.kind in ("add", "cat"):
            axes = []
            for axis in range(2):
                parts = [out[j][axis] for j in node.inputs]
                if len({p.jump for p in parts}) != 1 or len({graph.nodes[j].shape[1 + axis] for j in node.inputs}) != 1:
                    raise GraphError(
                        f"{node.name} joins maps of different sizes or strides; their positions do not line up."
                    )
                axes.append(Span(min(p.first for p in parts), max(p.last for p in parts), parts[0].jump))
            out.append((axes[0], axes[1]))
        else:
            raise GraphError(
                f"The geometry of {node.name} ({node.why}) cannot be known: it lies between the "
                "input and a recorded layer, and it is not a convolution, pool, padding, "
                "per-position layer, addition or channel concatenation."
            )
    return out
