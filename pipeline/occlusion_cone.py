"""Stage 3 at the limit: the occlusion sweep computed only where it can change anything.

An occluder changes only a small window of each feature map (its forward cone); a target unit
reads one position of its map, which depends only on a window of each earlier map (its backward
cone). Starting from the unchanged original maps, every node of the network's graph
(`pipeline.graph`) is evaluated, batched over occluder positions, on a fixed-size box that holds
the intersection of the two cones; values outside it are the original's. Residual adds and
concatenations expand each input's box to theirs with original values. Occluders outside every
target's receptive field are skipped (their discrepancy is zero), and only the channels the target
units depend on are computed after the last convolution of each path (`cones.channel_needs`).

A stride-1 convolution whose box reads more unchanged than changed input is computed incrementally:
the original output plus the input's change scattered through the kernel (`conv_transpose2d`).

The occluder grid is cut into tiles (`cones.tiling`), each with boxes sized for its own occluders,
whose cones the maps' edges clip. Early nodes are shared by all target positions (forward cone
only); from a split node on (in execution order), each distinct target position continues on its
own, much smaller, backward cone. The split is chosen per tile by counting multiply-adds. The plan
(`cone_plan`: boxes, tiles, splits, channel needs) is index arithmetic on the CPU; this module runs
it, with the maps and patches on the model's device, so the same code runs on CUDA.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline import cones
from pipeline.cone_plan import BoxPlan, ConePlan, Planned, Target
from pipeline.cones import Channels, Need
from pipeline.graph import ACTIVATIONS, Graph, GraphError, fold_batch_norms, trace
from pipeline.networks import Preprocessing
from pipeline.occluders import OcclusionSettings, Targets, occluder_noise
from pipeline.patches import Patch, channels_last, crops, paste, restricted, transposed

logger = logging.getLogger(__name__)


class ConeSweep:
    """One image through one plan (`cone_plan.ConePlan`): the original maps, and the sweep's runs.

    What it keeps between batches, each for one purpose: the index tensors that narrow a patch to a
    channel set (`_picks`), each node's original map narrowed to a channel set (`_planes`) and padded
    for a window (`_padded`), and each node's weights restricted to a channel set, as they are
    (`_weights`), scattered (`_scatter_weights`), or a BatchNorm's (`_norms`)."""

    def __init__(self, plan: ConePlan, image: torch.Tensor) -> None:
        self.plan = plan
        self.graph, self.target, self.lay, self.side, self.lo = plan.graph, plan.target, plan.lay, plan.side, plan.lo
        with torch.inference_mode():
            self.values = [channels_last(v[0]) for v in self.graph.evaluate(image[None], stop=self.target)]
        self.original = self.values[self.target]
        self.consumers: list[list[int]] = [[] for _ in self.graph.nodes]
        for i, node in enumerate(self.graph.nodes):
            for j in node.inputs:
                self.consumers[j].append(i)
        self._picks: dict[tuple, torch.Tensor] = {}
        self._planes: dict[tuple[int, Channels], torch.Tensor] = {}
        self._padded: dict[tuple[int, Channels], torch.Tensor] = {}
        self._weights: dict[tuple[int, Channels], tuple[torch.Tensor, torch.Tensor | None, int]] = {}
        self._scatter_weights: dict[tuple[int, Channels], tuple[torch.Tensor, int, torch.Tensor]] = {}
        self._norms: dict[tuple[int, Channels], list[torch.Tensor | None]] = {}
        self.madds = 0.0  # multiply-adds done so far (benchmarks report the rate)

    # Running ----------------------------------------------------------------------------------

    def _take(self, patch: Patch, want: Channels) -> torch.Tensor:
        if want == patch.channels:
            return patch.values
        if want is None:
            raise ValueError("A patch of some channels cannot be widened to every channel.")
        key = (patch.channels, want, patch.values.device)
        if key not in self._picks:
            have = patch.channels
            positions = list(want) if have is None else [have.index(c) for c in want]
            self._picks[key] = torch.tensor(positions, device=patch.values.device)
        return patch.values[:, self._picks[key]]  # index_select copies a channels-last tensor whole first

    def _original(self, j: int, channels: Channels) -> torch.Tensor:
        """Node j's original map, narrowed to `channels` (channels-last, like the crops cut from it);
        once per node and channel set."""
        if channels is None:
            return self.values[j]
        if (j, channels) not in self._planes:
            self._planes[j, channels] = channels_last(self.values[j][list(channels)])
        return self._planes[j, channels]

    def _expand(
        self, j: int, patch: Patch, want: Channels, sides: tuple[int, int], y: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """An input's patch on this node's box: its own values where it has them, originals elsewhere."""
        values = self._take(patch, want)
        if values.shape[-2:] == sides and torch.equal(patch.y, y) and torch.equal(patch.x, x):
            return values
        out = crops(self._original(j, want), y, x, *sides)
        paste(out, values, patch.y - y, patch.x - x)
        return out

    def _padded_input(self, i: int, channels: Channels) -> torch.Tensor:
        key = (i, channels)
        if key not in self._padded:
            layout = self.lay[i]
            plane = self._original(layout.node.inputs[0], channels)
            wy, wx = layout.axes()
            value = float("-inf") if isinstance(layout.node.module, nn.MaxPool2d | nn.AdaptiveMaxPool2d) else 0.0
            pads = (wx.pad, layout.right_pad(1), wy.pad, layout.right_pad(0))
            self._padded[key] = channels_last(F.pad(plane, pads, value=value)) if any(pads) else plane
        return self._padded[key]

    def _window(
        self, i: int, patch: Patch, channels: Channels, sides: tuple[int, int], y: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """The input a box needs: the input's changed values where they fall in the window, the
        original (padded) map everywhere else. N x C x Wy x Wx."""
        layout = self.lay[i]
        wy, wx = layout.axes()
        h, w = (sides[0] - 1) * wy.stride + wy.extent, (sides[1] - 1) * wx.stride + wx.extent
        values = self._take(patch, channels)
        if (
            values.shape[-2:] == layout.size_in
            and sides == layout.size_out
            and not patch.y.any()
            and not patch.x.any()
            and not y.any()
            and not x.any()
        ):
            # Deep layers: every occluder changes the whole map, so the window is the patch, padded.
            maximum = isinstance(layout.node.module, nn.MaxPool2d | nn.AdaptiveMaxPool2d)
            pads = (wx.pad, layout.right_pad(1), wy.pad, layout.right_pad(0))
            padded = F.pad(values, pads, value=float("-inf") if maximum else 0.0) if any(pads) else values
            return padded[..., :h, :w]
        out = crops(self._padded_input(i, channels), y * wy.stride, x * wx.stride, h, w)
        paste(out, values, patch.y + wy.pad - y * wy.stride, patch.x + wx.pad - x * wx.stride)
        return out

    def _window_node(
        self, i: int, patch: Patch, need: Channels, sides: tuple[int, int], y: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        layout = self.lay[i]
        m = layout.node.module
        wy, wx = layout.axes()
        if isinstance(m, nn.Conv2d):
            if self.plan.scatters(i, patch.values.shape[-2] * patch.values.shape[-1], sides[0] * sides[1]):
                return self._scatter(i, m, patch, need, sides, y, x)
            if (i, need) not in self._weights:  # restricted weights once per node and channel set, not per batch
                self._weights[i, need] = restricted(m, need)
            weight, bias, groups = self._weights[i, need]
            window = self._window(i, patch, None, sides, y, x)
            return F.conv2d(window, weight, bias, (wy.stride, wx.stride), 0, (wy.dilation, wx.dilation), groups)
        window = self._window(i, patch, need, sides, y, x)
        kernel, stride = (wy.kernel, wx.kernel), (wy.stride, wx.stride)
        if isinstance(m, nn.MaxPool2d | nn.AdaptiveMaxPool2d):
            return F.max_pool2d(window, kernel, stride, 0, (wy.dilation, wx.dilation))
        if isinstance(m, nn.AvgPool2d | nn.AdaptiveAvgPool2d):
            return F.avg_pool2d(window, kernel, stride, 0)
        return window  # zero padding: the window is the output

    def _scatter(
        self,
        i: int,
        conv: nn.Conv2d,
        patch: Patch,
        need: Channels,
        sides: tuple[int, int],
        y: torch.Tensor,
        x: torch.Tensor,
    ) -> torch.Tensor:
        """A stride-1 convolution over its box, incrementally: the original output plus the change
        of its input scattered through the kernel (the change is zero outside the input's box)."""
        layout = self.lay[i]
        wy, wx = layout.axes()
        j = layout.node.inputs[0]
        change = crops(self.values[j], patch.y, patch.x, *patch.values.shape[-2:])
        torch.sub(patch.values, change, out=change)  # in place: these tensors are the sweep's biggest
        key = (i, need)
        if key not in self._scatter_weights:  # once per node and channel set, not per batch
            weight, _, groups = restricted(conv, need)
            self._scatter_weights[key] = (transposed(weight, groups), groups, self._original(i, need))
        weight, groups, original = self._scatter_weights[key]
        spread = F.conv_transpose2d(change, weight, groups=groups, dilation=(wy.dilation, wx.dilation))
        out = crops(original, y, x, *sides)
        # spread[..., 0, 0] lands on output position (y + pad - (extent - 1), x + pad - (extent - 1)).
        paste(out, spread, patch.y + wy.pad - (wy.extent - 1) - y, patch.x + wx.pad - (wx.extent - 1) - x, add=True)
        return out

    def _point(self, i: int, patch: Patch, need: Channels, alone: bool) -> torch.Tensor:
        node = self.graph.nodes[i]
        m = node.module
        if isinstance(m, nn.LocalResponseNorm):  # mixes channels: computed whole, then narrowed
            return self._take(Patch(m(patch.values), patch.y, patch.x, None), need)
        values = self._take(patch, need)
        if node.op is torch.relu:
            mine = alone and patch.owned and values is patch.values
            return values.relu_() if mine else values.relu()
        if isinstance(m, nn.BatchNorm2d):  # one not folded into a convolution
            if (i, need) not in self._norms:
                pick = (lambda t: t) if need is None else (lambda t: t[list(need)])
                self._norms[i, need] = [
                    None if t is None else pick(t) for t in (m.running_mean, m.running_var, m.weight, m.bias)
                ]
            mean, var, weight, bias = self._norms[i, need]
            return F.batch_norm(values, mean, var, weight, bias, False, 0.0, m.eps)
        if isinstance(m, ACTIVATIONS):
            return m(values)  # elementwise, never in place (the graph holds a copy that is not)
        return values  # Dropout (eval) and Identity

    def run(
        self,
        first: int,
        stop: int,
        state: dict[int, Patch],
        boxes: BoxPlan,
        needs: list[Need | None],
        ids: torch.Tensor,
    ) -> None:
        """Compute nodes first..stop-1 into `state` for occluders `ids`, dropping patches no later
        node reads."""
        gy, gx = ids // self.side, ids % self.side
        for i in range(first, stop):
            wanted = needs[i]
            if wanted is None:  # no target needs this node
                continue
            need = wanted.channels
            node = self.graph.nodes[i]
            by, bx = boxes[i]
            sides, y, x = (by.side, bx.side), by.start[gy], bx.start[gx]
            if node.kind == "point":
                source = state[node.inputs[0]]
                alone = len(self.consumers[node.inputs[0]]) == 1
                values = self._point(i, source, need, alone)
                y, x = source.y, source.x  # per position: the input's box, whatever this node's plan
                self.madds += values.numel()
            elif node.kind == "window":
                source = state[node.inputs[0]]
                values = self._window_node(i, source, need, sides, y, x)
                area = sides[0] * sides[1]
                if self.plan.scatters(i, source.values.shape[-2] * source.values.shape[-1], area):
                    area = source.values.shape[-2] * source.values.shape[-1]
                self.madds += self.lay[i].madds(area, values.shape[1]) * len(ids)
            elif node.kind == "add":
                parts = [self._expand(j, state[j], need, sides, y, x) for j in node.inputs]
                # into a part `_expand` made for this node (no other node holds it), else a new tensor
                fresh = [k for k, j in enumerate(node.inputs) if parts[k] is not state[j].values]
                values = parts[fresh[0]].add_(parts[1 - fresh[0]]) if fresh else parts[0] + parts[1]
                self.madds += values.numel()
            else:  # cat
                parts = [self._expand(j, state[j], ask, sides, y, x) for j, ask in cones.cat_parts(self.graph, i, need)]
                values = torch.cat(parts, 1)
            # A layer that passes its input through (Dropout, Identity) shares the input's tensor.
            shared = any(values is state[j].values for j in node.inputs if j in state)
            state[i] = Patch(values, y, x, need, owned=not shared)
            for j in node.inputs:
                if j in state and j >= first and max(self.consumers[j]) <= i:
                    del state[j]

    def discrepancy(
        self,
        units: torch.Tensor,
        ys: torch.Tensor,
        xs: torch.Tensor,
        noise: torch.Tensor,
        split: int | None = None,
        batch: int = 256,
    ) -> torch.Tensor:
        """|target - original| for every target (unit, y, x) and occluder: T x G*G (on the CPU)."""
        targets = list(zip(units.tolist(), ys.tolist(), xs.tolist(), strict=True))
        planned = self.plan.planned(targets)
        result = torch.zeros(len(targets), self.side * self.side, device=self.original.device)
        with torch.inference_mode():
            for tile, mask in enumerate(self.plan.masks):
                cut = planned.tiles[tile].split if split is None else max(1, split)
                chosen = torch.nonzero(planned.every & mask).flatten()
                for start in range(0, len(chosen), batch):
                    self._batch(tile, chosen[start : start + batch], cut, planned, targets, noise, result)
        return result.cpu()

    def _batch(
        self,
        tile: int,
        ids: torch.Tensor,
        split: int,
        planned: Planned,
        targets: list[Target],
        noise: torch.Tensor,
        result: torch.Tensor,
    ) -> None:
        """One batch of occluders of one tile into `result`: shared nodes up to the split, then each
        position's own."""
        n, device = len(self.graph.nodes), result.device
        frontier = {j for i in range(split, n) for j in self.graph.nodes[i].inputs if j < split}
        if split >= n:
            frontier.add(self.target)
        state = {
            0: Patch(noise[ids.to(noise.device)].to(device), self.lo[ids // self.side], self.lo[ids % self.side], None)
        }
        self.run(1, split, state, self.plan.shared[tile], planned.union, ids)
        for p, group in planned.groups.items():
            keep = group.keep[ids]
            if not bool(keep.any()):
                continue
            sub = ids[keep]
            own = {j: state[j].select(keep) for j in frontier if j in state}
            self.run(split, n, own, group.boxes[tile], group.needs, sub)
            out = own[self.target]
            iy, ix = p[0] - out.y, p[1] - out.x
            h, w = out.values.shape[-2:]
            inside = ((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)).to(device)
            iy, ix = iy.clamp(0, h - 1).to(device), ix.clamp(0, w - 1).to(device)
            rows = torch.arange(len(sub), device=device)
            columns = sub.to(device)
            for row, (unit, y, x) in enumerate(targets):
                if (y, x) != p:
                    continue
                channel = unit if out.channels is None else out.channels.index(unit)
                change = (out.values[rows, channel, iy, ix] - self.original[unit, y, x]).abs()
                result[row, columns] = torch.where(inside, change, torch.zeros((), device=device)).float()


# Multiply-adds of the cone sweep count this many times those of full passes when the planner
# compares them: its many small crops and convolutions keep a GPU's cores less busy than batches of
# whole images do. On the CPU the two run at the same rate (README, `make bench`); the CUDA figure is
# an estimate until `benchmarks/gpu.py` has measured it.
CONE_OVERHEAD = {"cpu": 1.0, "cuda": 3.0}


@functools.lru_cache(maxsize=8)
def traced(model: nn.Module, name: str, size: int) -> tuple[Graph, str]:
    """The graph up to one recorded module (BatchNorms folded), and why the cone sweep cannot
    follow it ('' if it can; logged once per process)."""
    try:
        graph = trace(model, [name], size)
        problem = cones.unsupported(graph)
    except GraphError as exc:
        graph, problem = Graph([], {}), str(exc)
    if problem:
        logger.warning("Occlusion sweeps of %s run as full forward passes: %s", name, problem)
        return graph, problem
    return fold_batch_norms(graph), ""


def cone_problem(model: nn.Module, names: list[str], size: int) -> str:
    """Why these layers get full passes instead of the cone sweep ('' when the cone sweep applies)."""
    for name in names:
        problem = traced(model, name, size)[1]
        if problem:
            return f"{name}: {problem}"
    return ""


def cone_plans(
    model: nn.Module, input_size: int, names: list[str], settings: OcclusionSettings, incremental: bool = True
) -> dict[str, ConePlan] | None:
    """The cone sweep's plan for each layer, or None when the network's graph has a node it cannot
    follow (`cone_problem` says which)."""
    if cone_problem(model, names, input_size):
        return None
    plans = {}
    for name in names:
        graph = traced(model, name, input_size)[0]
        plans[name] = ConePlan(graph, graph.outputs[name], input_size, settings.size, settings.stride, incremental)
    return plans


def cone_is_cheaper(plans: dict[str, ConePlan], targets: dict[str, Targets], device: torch.device) -> bool:
    """Whether the planned cone sweeps count fewer multiply-adds (times `CONE_OVERHEAD`) than full
    passes of every occluded copy through the deepest target layer."""
    cone_cost, full_cost = 0.0, 0.0
    for name, plan in plans.items():
        t = targets[name]
        cone_cost += plan.planned_cost(t.units.cpu(), t.ys.cpu(), t.xs.cpu())
        full_cost = max(full_cost, cones.count_madds(plan.graph, plan.target) * plan.side * plan.side)
    return cone_cost * CONE_OVERHEAD.get(device.type, CONE_OVERHEAD["cuda"]) < full_cost


def cone_occlusion_sweep(
    model: nn.Module,
    image: torch.Tensor,
    targets: dict[str, Targets],
    prep: Preprocessing,
    settings: OcclusionSettings,
    seed: int,
    split: int | None = None,
    incremental: bool = True,
    plans: dict[str, ConePlan] | None = None,
) -> dict[str, np.ndarray]:
    """`receptive_field.occlusion_sweep_full`'s result by the cone method, with the same occluders
    (`occluders.occluder_noise`). Whether to take it is `receptive_field.sweep_plans`' choice; asked
    directly (tests, benchmarks), a graph it cannot follow is a GraphError."""
    size = image.shape[-1]
    plans = plans or cone_plans(model, size, list(targets), settings, incremental)
    if plans is None:
        raise GraphError(f"The cone sweep cannot follow this network: {cone_problem(model, list(targets), size)}.")
    device = next(iter(model.parameters()), torch.empty(0)).device
    image = image.to(device)
    noise = torch.cat(list(occluder_noise(size, settings, prep, seed))).to(device, image.dtype)
    out = {}
    for name, t in targets.items():
        plan = plans[name]
        grid = ConeSweep(plan, image).discrepancy(t.units.cpu(), t.ys.cpu(), t.xs.cpu(), noise, split=split)
        out[name] = grid.reshape(-1, plan.side, plan.side).numpy()
    return out
