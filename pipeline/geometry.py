"""Every layer's geometry, read from the network's graph (`pipeline.graph`).

On one axis, position i of a node's map reads input pixels first + i*jump .. last + i*jump: windows
(convolutions, pools, padding) compose, per-position layers pass the span on, and joins (residual
adds, concatenations) take the union of their inputs' spans. Nothing here follows execution order.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.graph import Graph, GraphError, Window


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
