import numpy as np
import torch
from torch import nn

from pipeline.networks import Preprocessing, build_network, layer_geometry
from pipeline.receptive_field import (
    OcclusionSettings,
    Targets,
    average_rf,
    discrepancy_to_pixels,
    occluder_grid,
    occlusion_sweep,
    recentre,
    rf_size_px,
)
from pipeline.segmentation import render, rf_kernel, segment


def known_rf_net() -> nn.Module:
    """Two 5x5 convs: a theoretical receptive field of 9 px, positive weights so nothing dies."""
    net = nn.Sequential(nn.Conv2d(3, 2, 5), nn.ReLU(), nn.Conv2d(2, 2, 5))
    for module in net:
        if isinstance(module, nn.Conv2d):
            nn.init.uniform_(module.weight, 0.1, 1.0)
            nn.init.zeros_(module.bias)
    return net.eval()


def test_paper_grid_has_5329_copies():
    assert occluder_grid(227, OcclusionSettings()) == (73, 5329)


def test_empirical_rf_is_no_larger_than_theoretical_and_centred():
    net = known_rf_net()
    geometry = layer_geometry(net, "2", 32)
    assert geometry.rf == 9
    settings = OcclusionSettings(size=3, stride=1, batch_size=256)
    discs, centres = [], []
    for seed in range(3):
        image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(seed))
        targets = {"2": Targets(torch.tensor([0, 1]), torch.tensor([10, 5]), torch.tensor([12, 20]))}
        grid = occlusion_sweep(net, image, targets, Preprocessing(32), settings, seed)["2"]
        maps = discrepancy_to_pixels(grid, 32, settings)
        for row, (y, x) in enumerate([(10, 12), (5, 20)]):
            discs.append(maps[row])
            centres.append(tuple(int(c) for c in geometry.centre(y, x)))
            outside = np.ones((32, 32), bool)
            cy, cx = centres[-1]
            outside[cy - 4 - 2 : cy + 5 + 2, cx - 4 - 2 : cx + 5 + 2] = False  # RF plus the occluder's reach
            assert maps[row][outside].max() == 0
    rf = average_rf(discs, centres)
    assert 0 < rf_size_px(rf) <= geometry.rf
    peak = np.unravel_index(rf.argmax(), rf.shape)
    assert abs(peak[0] - 31) <= 4 and abs(peak[1] - 31) <= 4  # canvas centre is (31, 31)


def test_sweep_is_reproducible_from_its_seed():
    net = known_rf_net()
    image = torch.rand(3, 20, 20)
    targets = {"2": Targets(torch.tensor([0]), torch.tensor([3]), torch.tensor([4]))}
    settings = OcclusionSettings(size=5, stride=2)
    a = occlusion_sweep(net, image, targets, Preprocessing(20), settings, seed=7)["2"]
    b = occlusion_sweep(net, image, targets, Preprocessing(20), settings, seed=7)["2"]
    assert np.array_equal(a, b) and a.shape == (1, 8, 8)


def test_demo_network_conv3_empirical_rf_within_theoretical(demo_dir):
    from pipeline.images import crop_square, load_rgb, to_tensor

    net = build_network("demo")
    geometry = layer_geometry(net.model, "features.6", 64)
    settings = OcclusionSettings(size=5, stride=2, batch_size=512)
    discs, centres = [], []
    for path in sorted((demo_dir / "images").rglob("*.png"))[:6]:
        x = to_tensor(crop_square(load_rgb(path), 64), net.preprocessing)
        with torch.inference_mode():
            fmap = net.model.features(x[None])[0]
        y, xx = divmod(int(fmap[0].flatten().argmax()), fmap.shape[-1])
        grid = occlusion_sweep(
            net.model,
            x,
            {"features.6": Targets(torch.tensor([0]), torch.tensor([y]), torch.tensor([xx]))},
            net.preprocessing,
            settings,
            seed=1,
        )["features.6"]
        discs.append(discrepancy_to_pixels(grid, 64, settings)[0])
        centres.append(tuple(int(round(c)) for c in geometry.centre(y, xx)))
    assert rf_size_px(average_rf(discs, centres)) <= geometry.rf


def test_recentre_puts_the_argmax_at_the_canvas_centre():
    disc = np.zeros((5, 5), np.float32)
    disc[1, 3] = 1.0
    canvas = recentre(disc, 1, 3)
    assert canvas.shape == (9, 9) and canvas[4, 4] == 1.0


def test_segmentation_stamps_rf_where_the_unit_fires_and_dims_the_rest():
    geometry = layer_geometry(known_rf_net(), "2", 32)  # 24 x 24 map, jump 1, start 4
    rf = np.zeros((63, 63), np.float32)
    rf[31 - 2 : 31 + 3, 31 - 2 : 31 + 3] = 1.0  # a 5 x 5 empirical RF
    fmap = np.zeros((24, 24), np.float32)
    fmap[10, 10] = 2.0
    fmap[0, 0] = 0.9  # below half the maximum: no stamp
    mask = segment(fmap, rf_kernel(rf, geometry), geometry, 32)
    assert mask.sum() == 25 and mask[14, 14] and not mask[4, 4]
    shown = render(np.full((32, 32, 3), 200, np.uint8), mask)
    assert shown[14, 14, 0] == 200 and shown[0, 0, 0] == 40
    flat = rf_kernel(np.zeros((63, 63), np.float32), geometry)
    assert flat.sum() == 81  # a flat RF falls back to the theoretical square
