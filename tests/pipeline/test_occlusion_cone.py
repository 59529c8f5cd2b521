"""The cone-restricted occlusion sweep gives the full forward sweep's discrepancies (within 1e-4
relative) on the demo network and on both AlexNet shapes, whichever layer the target positions part
ways at, and falls back where it cannot follow the network."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.cones import count_madds, feature_chain
from pipeline.networks import AlexNet, AlexNetCaffe, Preprocessing, build_network
from pipeline.occlusion_cone import ConeSweep, cone_occlusion_sweep
from pipeline.receptive_field import OcclusionSettings, Targets, occlusion_sweep, occlusion_sweep_full


def both(model: nn.Module, size: int, name: str, targets: Targets, stride: int, split: int | None = None,
         incremental: bool = True):
    torch.manual_seed(1)
    image = torch.randn(3, size, size)
    prep = Preprocessing(size)
    settings = OcclusionSettings(size=11, stride=stride, batch_size=64)
    full = occlusion_sweep_full(model, image, {name: targets}, prep, settings, seed=5)[name]
    cone = cone_occlusion_sweep(model, image, {name: targets}, prep, settings, seed=5, split=split,
                                incremental=incremental)[name]
    return full, cone


def multiply_adds(chain: nn.Sequential, index: int, size: int, watched: Targets, incremental: bool) -> float:
    sweep = ConeSweep(chain, index, torch.randn(3, size, size), 11, 3, incremental)
    noise = torch.randn(sweep.side * sweep.side, 3, 11, 11)
    sweep.discrepancy(watched.units, watched.ys, watched.xs, noise)
    return sweep.madds


def relative_error(full: np.ndarray, cone: np.ndarray) -> float:
    return float(np.abs(full - cone).max() / np.abs(full).max())


def targets(*triples: tuple[int, int, int]) -> Targets:
    units, ys, xs = zip(*triples, strict=True)
    return Targets(torch.tensor(units), torch.tensor(ys), torch.tensor(xs))


def test_demo_network_every_layer_and_split() -> None:
    model = build_network("demo").model
    for name, watched in (("features.6", targets((0, 3, 4), (5, 8, 8), (9, 15, 0), (9, 0, 15), (12, 8, 8))),
                          ("features.5", targets((1, 0, 15), (2, 7, 7))), ("features.0", targets((3, 30, 2)))):
        full, cone = both(model, 64, name, watched, stride=3)
        assert full.shape == cone.shape and full.max() > 0
        assert relative_error(full, cone) < 1e-4, name
    layers = len(ConeSweep(model.features, 6, torch.zeros(3, 64, 64), 11, 3).steps)
    watched = targets((0, 3, 4), (5, 8, 8), (9, 15, 0))
    for split in range(layers + 1):
        for incremental in (True, False):
            full, cone = both(model, 64, "features.6", watched, stride=5, split=split, incremental=incremental)
            assert relative_error(full, cone) < 1e-4, (split, incremental)


def test_incremental_convolutions_do_fewer_multiply_adds() -> None:
    """Scattering each layer's change through the kernel instead of recomputing the box."""
    chain = build_network("demo").model.features
    watched = targets((0, 3, 4), (5, 8, 8), (9, 15, 0))
    assert multiply_adds(chain, 6, 64, watched, True) < 0.8 * multiply_adds(chain, 6, 64, watched, False)


@pytest.mark.slow
def test_alexnet_pool5_and_conv3_match_the_full_sweep() -> None:
    model = AlexNet().eval()
    full, cone = both(model, 224, "features.12", targets((3, 2, 3), (100, 5, 0), (101, 5, 0), (7, 0, 5)), stride=9)
    assert relative_error(full, cone) < 1e-4
    assert (full[:, 0, 0] == 0).all() == (cone[:, 0, 0] == 0).all()
    full, cone = both(model, 224, "features.6", targets((10, 6, 6), (11, 12, 0)), stride=9)
    assert relative_error(full, cone) < 1e-4
    many = targets(*((unit, unit % 6, (unit * 5) % 6) for unit in range(0, 256, 16)))  # 16 positions
    full, cone = both(model, 224, "features.12", many, stride=9)
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
    assert multiply_adds(model.features, 14, 227, watched, True) < 0.8 * multiply_adds(model.features, 14, 227,
                                                                                         watched, False)


def test_occluders_outside_every_receptive_field_are_skipped() -> None:
    model = build_network("demo").model
    image = torch.randn(3, 64, 64)
    sweep = ConeSweep(model.features, 3, image, 5, 2)  # conv2: a 10-pixel theoretical RF
    relevant = sweep.relevant((0, 0))
    assert 0 < int(relevant.sum()) < len(relevant) // 10
    full, cone = both(model, 64, "features.3", targets((0, 0, 0)), stride=2)
    assert relative_error(full, cone) < 1e-4 and (cone[0][cone[0] == 0].size > cone[0].size // 2)


def test_networks_it_cannot_follow_fall_back_to_full_passes() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))

        def forward(self, x):
            return self.features(x) + x.mean(1, keepdim=True)

    model = Branchy().eval()
    assert feature_chain(model, ["features.2"]) is None  # it does not declare a feature chain
    Branchy.feature_chain = "features"
    assert feature_chain(model, ["features.2"]) is not None
    assert feature_chain(model, ["classifier.0"]) is None
    model.features[1] = nn.Tanh()
    assert feature_chain(model, ["features.2"]) is None  # a layer it does not know
    image, watched = torch.randn(3, 16, 16), {"features.2": targets((0, 5, 5))}
    settings = OcclusionSettings(size=3, stride=2)
    prep = Preprocessing(16)
    assert np.array_equal(occlusion_sweep(model, image, watched, prep, settings, seed=1)["features.2"],
                          occlusion_sweep_full(model, image, watched, prep, settings, seed=1)["features.2"])


def test_multiply_adds_of_a_full_forward() -> None:
    # torchvision AlexNet to pool5: 656.8M multiply-adds per 224-pixel image (convolutions dominate).
    assert count_madds(AlexNet().features, 12, 224) == pytest.approx(656.8e6, rel=0.001)
