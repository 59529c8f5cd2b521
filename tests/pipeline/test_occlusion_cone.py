"""The cone-restricted occlusion sweep gives the full forward sweep's discrepancies (within 1e-4
relative) on chains (the demo network, both AlexNets) and on graphs (residual adds, downsample
branches, BatchNorm, concatenations, parallel branches), whichever node the target positions part
ways at, and hands networks it cannot follow, or would not speed up, to full passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pipeline import architectures as arch
from pipeline.cone_plan import ConePlan
from pipeline.cones import count_madds
from pipeline.networks import AlexNet, AlexNetCaffe, Preprocessing, build_network
from pipeline.occlusion_cone import ConeSweep, cone_occlusion_sweep, cone_problem, traced
from pipeline.receptive_field import OcclusionSettings, Targets, occlusion_sweep, occlusion_sweep_full, sweep_plans
from tests.pipeline.shapes import GoogLeNetShaped, Squashed, narrow_densenet, small_resnet


def both(
    model: nn.Module,
    size: int,
    name: str,
    targets: Targets,
    stride: int,
    split: int | None = None,
    incremental: bool = True,
    occluder: int = 11,
    dtype: torch.dtype = torch.float32,
):
    torch.manual_seed(1)
    image = torch.randn(3, size, size, dtype=dtype)
    prep = Preprocessing(size)
    settings = OcclusionSettings(size=occluder, stride=stride, batch_size=64)
    full = occlusion_sweep_full(model, image, {name: targets}, prep, settings, seed=5)[name]
    cone = cone_occlusion_sweep(
        model, image, {name: targets}, prep, settings, seed=5, split=split, incremental=incremental
    )[name]
    return full, cone


def plan_of(model: nn.Module, name: str, size: int, incremental: bool = True) -> ConePlan:
    graph = traced(model, name, size)[0]
    return ConePlan(graph, graph.outputs[name], size, 11, 3, incremental)


def sweep_of(model: nn.Module, name: str, size: int, incremental: bool = True) -> ConeSweep:
    return ConeSweep(plan_of(model, name, size, incremental), torch.randn(3, size, size))


def multiply_adds(model: nn.Module, name: str, size: int, watched: Targets, incremental: bool) -> float:
    sweep = sweep_of(model, name, size, incremental)
    noise = torch.randn(sweep.side * sweep.side, 3, 11, 11)
    sweep.discrepancy(watched.units, watched.ys, watched.xs, noise)
    return sweep.madds


def relative_error(full: np.ndarray, cone: np.ndarray) -> float:
    return float(np.abs(full - cone).max() / np.abs(full).max())


def targets(*triples: tuple[int, int, int]) -> Targets:
    units, ys, xs = zip(*triples, strict=True)
    return Targets(torch.tensor(units), torch.tensor(ys), torch.tensor(xs))


def scattered(units: int, side: int, count: int = 16) -> Targets:
    """`count` units at positions spread over a side x side map (several share a position)."""
    return targets(*((u * units // count, (u * 3) % side, (u * 5 + 1) % side) for u in range(count)))


def seeded(model: nn.Module) -> nn.Module:
    """Seeded random weights that keep activations near 1 (He initialisation), BatchNorm statistics
    included (so folding them is exercised)."""
    torch.manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    return model.eval()


def test_demo_network_every_layer_and_split() -> None:
    model = build_network("demo").model
    for name, watched in (
        ("features.6", targets((0, 3, 4), (5, 8, 8), (9, 15, 0), (9, 0, 15), (12, 8, 8))),
        ("features.5", targets((1, 0, 15), (2, 7, 7))),
        ("features.0", targets((3, 30, 2))),
    ):
        full, cone = both(model, 64, name, watched, stride=3)
        assert full.shape == cone.shape and full.max() > 0
        assert relative_error(full, cone) < 1e-4, name
    nodes = len(plan_of(model, "features.6", 64).graph.nodes)
    watched = targets((0, 3, 4), (5, 8, 8), (9, 15, 0))
    for split in range(1, nodes + 1):
        for incremental in (True, False):
            full, cone = both(model, 64, "features.6", watched, stride=5, split=split, incremental=incremental)
            assert relative_error(full, cone) < 1e-4, (split, incremental)


def test_incremental_convolutions_do_fewer_multiply_adds() -> None:
    """Scattering each layer's change through the kernel instead of recomputing the box."""
    model = build_network("demo").model
    watched = targets((0, 3, 4), (5, 8, 8), (9, 15, 0))
    assert multiply_adds(model, "features.6", 64, watched, True) < 0.8 * multiply_adds(
        model, "features.6", 64, watched, False
    )


@pytest.mark.slow
def test_alexnet_pool5_and_conv3_match_the_full_sweep() -> None:
    model = AlexNet().eval()
    full, cone = both(model, 224, "features.12", targets((3, 2, 3), (100, 5, 0), (101, 5, 0), (7, 0, 5)), stride=9)
    assert relative_error(full, cone) < 1e-4
    assert (full[:, 0, 0] == 0).all() == (cone[:, 0, 0] == 0).all()
    full, cone = both(model, 224, "features.6", targets((10, 6, 6), (11, 12, 0)), stride=9)
    assert relative_error(full, cone) < 1e-4
    full, cone = both(model, 224, "features.12", scattered(256, 6), stride=9)
    assert relative_error(full, cone) < 1e-4


@pytest.mark.slow
def test_caffe_alexnet_grouped_convolutions_and_lrn() -> None:
    model = AlexNetCaffe().eval()
    full, cone = both(model, 227, "features.14", targets((7, 1, 5), (200, 4, 2), (201, 4, 2)), stride=11)
    assert relative_error(full, cone) < 1e-4
    full, cone = both(model, 227, "features.7", targets((7, 6, 6), (130, 0, 12)), stride=11)  # norm2: after LRN
    assert relative_error(full, cone) < 1e-4
    # Its grouped conv2, conv4 and conv5 take the incremental path too.
    watched = targets((7, 1, 5), (200, 4, 2))
    assert multiply_adds(model, "features.14", 227, watched, True) < 0.8 * multiply_adds(
        model, "features.14", 227, watched, False
    )


def test_small_graphs_every_split() -> None:
    """A residual network, a narrow DenseNet and a GoogLeNet-shaped net, split at every node."""
    for model, name, size, watched in (
        (seeded(small_resnet()), "layer3", 96, targets((0, 1, 2), (5, 3, 3), (30, 3, 3))),
        (seeded(narrow_densenet()), "features.denseblock2", 64, targets((0, 1, 2), (5, 3, 3), (17, 2, 2))),
        (seeded(GoogLeNetShaped()), "inception3b", 96, targets((0, 1, 2), (30, 3, 3), (43, 2, 2))),
    ):
        assert cone_problem(model, [name], size) == ""
        nodes = len(plan_of(model, name, size).graph.nodes)
        for split in sorted({1, 2, nodes // 3, nodes // 2, nodes - 2, nodes - 1, nodes}):
            full, cone = both(model, size, name, watched, stride=7, split=split)
            assert full.max() > 0 and relative_error(full, cone) < 1e-4, (name, split)


def test_occluders_near_the_edges_get_smaller_boxes_and_the_same_result(monkeypatch) -> None:
    """Tiles of the occluder grid, each with boxes fitted to its own occluders' (edge-clipped) cones."""
    from pipeline import cones

    monkeypatch.setattr(cones, "TILE_OVERHEAD", 0.0)  # small sweeps would otherwise keep one tile
    for model, name, size, watched in (
        (seeded(small_resnet()), "layer3", 96, targets((0, 1, 2), (5, 3, 3), (30, 3, 3))),
        (seeded(GoogLeNetShaped()), "inception3b", 96, targets((0, 1, 2), (43, 2, 2))),
    ):
        plan = plan_of(model, name, size)
        assert len(plan.tiles) > 1
        areas = np.array([[y.side * x.side for y, x in boxes] for boxes in plan.shared])  # tiles x nodes
        assert (areas.min(0) < areas.max(0)).sum() > len(plan.graph.nodes) // 3  # corners' boxes are smaller
        tiled = plan.planned_cost(watched.units, watched.ys, watched.xs)
        with monkeypatch.context() as m:
            m.setattr(cones, "tiling", lambda lay, ranges: [((0, plan.side), (0, plan.side))])
            whole = plan_of(model, name, size).planned_cost(watched.units, watched.ys, watched.xs)
        assert tiled < 0.98 * whole
        nodes = len(plan.graph.nodes)
        for split in (1, nodes // 2, nodes):
            full, cone = both(model, size, name, watched, stride=3, split=split)
            assert full.max() > 0 and relative_error(full, cone) < 1e-4, (name, split)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("factory", "name", "units", "side", "stride", "dtype"),
    [
        (arch.resnet18, "layer3", 256, 14, 27, torch.float64),
        (arch.resnet18, "layer4", 512, 7, 27, torch.float64),
        (arch.resnet50, "layer4", 2048, 7, 27, torch.float64),
        (arch.vgg16, "features.28", 512, 14, 27, torch.float32),
        (arch.densenet161, "features.denseblock4", 2208, 7, 40, torch.float64),
    ],
)
def test_builtin_graphs_match_the_full_sweep_with_1_and_16_targets(factory, name, units, side, stride, dtype) -> None:
    """BatchNorm networks in float64, with 33-px occluders: with random weights an 11-px occluder
    moves a deep unit by 1e-4 to 1e-3 of its value, and float32 rounding alone (batch-size dependent
    in the full passes too) would be 1e-4 of that."""
    model = seeded(factory()).to(dtype)
    assert cone_problem(model, [name], 224) == ""
    for watched in (targets((units // 3, side // 2, side // 3)), scattered(units, side)):
        full, cone = both(model, 224, name, watched, stride=stride, occluder=33, dtype=dtype)
        assert full.max() > 0 and relative_error(full, cone) < 1e-4


def test_occluders_outside_every_receptive_field_are_skipped() -> None:
    model = build_network("demo").model
    plan = plan_of(model, "features.3", 64)  # conv2: a 10-pixel theoretical RF
    relevant = plan.relevant((0, 0))
    assert 0 < int(relevant.sum()) < len(relevant) // 10
    full, cone = both(model, 64, "features.3", targets((0, 0, 0)), stride=2)
    assert relative_error(full, cone) < 1e-4 and (cone[0][cone[0] == 0].size > cone[0].size // 2)


def test_networks_it_cannot_follow_fall_back_to_full_passes_and_say_why() -> None:
    model = Squashed().eval()
    assert cone_problem(model, ["head"], 16) == "head: head pads with 'reflect', not zeros"
    assert cone_problem(model, ["squash"], 16) == ""  # the layer before it can still be followed
    full, cone = both(model, 16, "squash", targets((1, 5, 5), (2, 9, 3)), stride=2, occluder=3)
    assert relative_error(full, cone) < 1e-4  # elementwise activations, one of them in place
    image, watched = torch.randn(3, 16, 16), {"head": targets((0, 5, 5))}
    settings, prep = OcclusionSettings(size=3, stride=2), Preprocessing(16)
    assert sweep_plans(model, 16, watched, settings) is None
    assert np.array_equal(
        occlusion_sweep(model, image, watched, prep, settings, seed=1)["head"],
        occlusion_sweep_full(model, image, watched, prep, settings, seed=1)["head"],
    )


def test_the_planner_picks_full_passes_when_the_cone_would_not_save_work(monkeypatch) -> None:
    from pipeline import occlusion_cone

    model = build_network("demo").model
    # Every unit watched at every position, and an occluder as large as the image.
    everywhere = {"features.6": targets(*((u, p // 16, p % 16) for p in range(256) for u in range(64)))}
    assert sweep_plans(model, 64, everywhere, OcclusionSettings(size=64, stride=8)) is None
    small = OcclusionSettings(size=5, stride=4)
    assert sweep_plans(model, 64, everywhere, small) is not None
    # A device whose cone multiply-adds cost 100 times more (as small kernels can on a GPU) gets full passes.
    monkeypatch.setitem(occlusion_cone.CONE_OVERHEAD, "cpu", 100.0)
    assert sweep_plans(model, 64, everywhere, small) is None


def test_multiply_adds_of_a_full_forward() -> None:
    # torchvision AlexNet to pool5: 656.8M multiply-adds per 224-pixel image (convolutions dominate).
    graph = traced(AlexNet().eval(), "features.12", 224)[0]
    assert count_madds(graph, graph.outputs["features.12"]) == pytest.approx(656.8e6, rel=0.001)
