"""The plan of a cone sweep for one target node: which occluders reach which target positions, the
tiles of the occluder grid, every node's box per tile (shared by all positions, and per position
within its backward cone), the channels each node must carry, and where each tile's computation
parts into one run per target position. Pure index arithmetic on the network's graph (`cones`), no
maps: the planner can price a sweep before anything is computed, and `occlusion_cone` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pipeline import cones
from pipeline.cones import Need
from pipeline.geometry import Box
from pipeline.graph import Graph

BoxPlan = list[tuple[Box, Box]]  # per node: its box on rows and on columns
Target = tuple[int, int, int]  # unit, y, x


@dataclass
class Group:
    """The targets at one map position: their units, relevant occluders, boxes (per tile) and needs."""

    units: list[int]
    keep: torch.Tensor  # G*G booleans: the occluders whose forward cone reaches the position
    boxes: list[BoxPlan]
    needs: list[Need | None]


@dataclass
class TilePlan:
    """One tile's run: shared nodes before `split`, each position's own from it on; `madds` counted."""

    split: int
    madds: float


@dataclass
class Planned:
    """A set of targets, planned: grouped by position, the occluders any of them needs, the union's
    channel needs (for the shared nodes), and each tile's run."""

    groups: dict[tuple[int, int], Group]
    every: torch.Tensor
    union: list[Need | None]
    tiles: list[TilePlan]

    @property
    def madds(self) -> float:
        return sum(tile.madds for tile in self.tiles)


class ConePlan:
    """The sweep of one image size by `size`-pixel occluders every `stride` pixels, for one target node."""

    def __init__(self, graph: Graph, target: int, input_size: int, size: int, stride: int,
                 incremental: bool = True) -> None:  # fmt: skip
        self.graph, self.target, self.size, self.incremental = graph, target, size, incremental
        self.lay = cones.layouts(graph)
        self.side = (input_size - size) // stride + 1
        self.lo = torch.arange(self.side) * stride
        self.ranges = cones.forward_ranges(graph, self.lay, self.lo, self.lo + size - 1)
        self.tiles = cones.tiling(self.lay, self.ranges)
        self.masks = []  # per tile, its occluders (G*G, row-major)
        for (y0, y1), (x0, x1) in self.tiles:
            mask = torch.zeros(self.side, self.side, dtype=torch.bool)
            mask[y0:y1, x0:x1] = True
            self.masks.append(mask.flatten())
        self.shared = [cones.boxes(self.lay, self.ranges, None, size, tile) for tile in self.tiles]
        self._planned: dict[tuple[Target, ...], Planned] = {}

    def relevant(self, position: tuple[int, int]) -> torch.Tensor:
        """Occluders (G*G, row-major) whose forward cone reaches the position."""
        (ly, hy), (lx, hx) = self.ranges[self.target]
        ry = (ly <= position[0]) & (position[0] <= hy)
        rx = (lx <= position[1]) & (position[1] <= hx)
        return (ry[:, None] & rx[None, :]).flatten()

    def group(self, position: tuple[int, int], units: list[int]) -> Group:
        limits = cones.backward_limits(self.graph, self.lay, self.target, position)
        return Group(
            units,
            self.relevant(position),
            [cones.boxes(self.lay, self.ranges, limits, self.size, tile) for tile in self.tiles],
            cones.channel_needs(self.graph, self.target, units),
        )

    def planned(self, targets: list[Target]) -> Planned:
        """The plan for these targets (kept for the last targets asked: the planner's cost check and the
        sweep use the same plan, made once)."""
        key = tuple(targets)
        if key not in self._planned:
            by_position: dict[tuple[int, int], list[int]] = {}
            for unit, y, x in targets:
                units = by_position.setdefault((y, x), [])
                if unit not in units:
                    units.append(unit)
            groups = {p: self.group(p, u) for p, u in by_position.items()}
            every = torch.stack([g.keep for g in groups.values()]).any(0)
            union = cones.channel_needs(self.graph, self.target, sorted({u for u, _, _ in targets}))
            tiles = [self.tile_plan(t, list(groups.values()), every, union) for t in range(len(self.tiles))]
            self._planned = {key: Planned(groups, every, union, tiles)}
        return self._planned[key]

    def planned_cost(self, units: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> float:
        """Multiply-adds the best plan for these targets counts."""
        return self.planned(list(zip(units.tolist(), ys.tolist(), xs.tolist(), strict=True))).madds

    def scatters(self, i: int, changed: int, out_area: int) -> bool:
        """Whether a convolution is cheaper as the original plus its change, scattered from the
        `changed` input positions, than recomputed over its box (stride 1 only)."""
        layout = self.lay[i]
        return (
            self.incremental
            and isinstance(layout.node.module, nn.Conv2d)
            and all(w.stride == 1 for w in layout.windows or ())
            and changed < out_area
        )

    def node_costs(self, boxes: BoxPlan, needs: list[Need | None], count: int) -> list[float]:
        costs = [0.0]
        for i in range(1, len(self.graph.nodes)):
            need = needs[i]
            if need is None:
                costs.append(0.0)
                continue
            by, bx = boxes[i]
            area = by.side * bx.side
            if self.lay[i].windows is not None and isinstance(self.lay[i].node.module, nn.Conv2d):
                iy, ix = boxes[self.graph.nodes[i].inputs[0]]
                if self.scatters(i, iy.side * ix.side, area):
                    area = iy.side * ix.side
            costs.append(count * self.lay[i].madds(area, need.count()))
        return costs

    def tile_plan(self, tile: int, groups: list[Group], every: torch.Tensor, union: list[Need | None]) -> TilePlan:
        """For one tile's occluders: the split node with the fewest multiply-adds (len(nodes): never
        split), and that count."""
        mask = self.masks[tile]
        shared = np.cumsum([0.0, *self.node_costs(self.shared[tile], union, int((every & mask).sum()))])
        total = shared.copy()  # shared[s]: nodes before s, computed once for all positions
        for g in groups:
            own = np.cumsum([0.0, *self.node_costs(g.boxes[tile], g.needs, int((g.keep & mask).sum()))])
            total += own[-1] - own
        split = int(np.argmin(total[1:])) + 1
        return TilePlan(split, float(total[split]))
