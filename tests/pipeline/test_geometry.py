"""Layer geometry from the network's graph, checked against an oracle that needs no formula: the
gradient support of one unit at a map position, with positive weights so that no path cancels, is
exactly the box of input pixels the unit can read (clipped to the image)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pipeline import architectures as arch
from pipeline.networks import BUILTINS, NetworkError, build_network, layer_geometries, layer_geometry
from tests.pipeline.shapes import GOOGLENET_LAYERS, GoogLeNetShaped, narrow_densenet, small_resnet


def positive(model: nn.Module) -> nn.Module:
    """The same graph with positive weights, BatchNorm as identity and max pools replaced
    by average pools of the same windows (a max pool's gradient reaches one input only)."""
    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(
                    parent,
                    name,
                    nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode),
                )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(
                    torch.rand(
                        m.weight.shape,
                        generator=generator,
                    )
                    + 0.5
                )
                m.weight /= m.weight[0].numel()
                if m.bias is not None:
                    m.bias.fill_(1e-3)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.weight.fill_(1.0)
                m.bias.fill_(1e-3)
    return model


def gradient_boxes(
    model: nn.Module, module_name: str, size: int, positions: list[tuple[int, int]]
) -> list[tuple[int, int, int, int]]:
    """Per map position, the rows and columns (first, last) of input pixels with a non-zero gradient."""
    captured = {}
    handle = dict(model.named_modules())[module_name].register_forward_hook(
        lambda _m, _i, out: captured.setdefault("out", out)
    )
    x = torch.ones(len(positions), 3, size, size, requires_grad=True)
    try:
        model(x)
    finally:
        handle.remove()
    out = captured["out"]
    total = sum(out[b, :, y, x_].sum() for b, (y, x_) in enumerate(positions))
    (grad,) = torch.autograd.grad(total, x)
    boxes = []
    for b in range(len(positions)):
        support = grad[b].abs().sum(0) > 0
        rows, cols = torch.nonzero(support.any(1)).flatten(), torch.nonzero(support.any(0)).flatten()
        boxes.append((int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])))
    return boxes


def check_against_gradients(model: nn.Module, names: list[str], size: int) -> dict:
    geometries = layer_geometries(model, names, size)
    oracle = positive(model)
    for name in names:
        g = geometries[name]
        positions = [(0, 0), (g.height // 2, g.width // 3), (g.height - 1, g.width - 1)]
        for (y, x), box in zip(positions, gradient_boxes(oracle, name, size, positions), strict=True):
            expected = []
            for centre in g.centre(y, x):
                first = round(centre - (g.rf - 1) / 2)
                expected += [max(first, 0), min(first + g.rf - 1, size - 1)]
            assert box == tuple(expected), (name, (y, x), box, expected, g)
    return geometries


def test_the_issue_example_residual_network_at_128_px() -> None:
    """Execution order would say layer2 155 px / jump 16 and layer3 603 px / jump 64."""
    model = small_resnet().eval()
    geometries = check_against_gradients(model, ["layer1", "layer2", "layer3"], 128)
    assert (geometries["layer2"].rf, geometries["layer2"].jump) == (99, 8)
    assert (geometries["layer3"].rf, geometries["layer3"].jump) == (211, 16)
    # Large enough that layer3's whole box fits at some position: both ends and the centre are seen.
    check_against_gradients(model, ["layer3", "layer4"], 480)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "wideresnet18", "vgg16"])
def test_builtin_layers_at_224_px(name: str) -> None:
    net = build_network(name)
    check_against_gradients(net.model, list(net.aliases.values()), 224)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_layer4_whole_box(name: str) -> None:
    """At 224 px layer4's box (over 400 px) is clipped on both sides at every position; at 480 px
    it is not, so its size, centre and jump are each seen."""
    check_against_gradients(build_network(name).model, ["layer4"], 480)


@pytest.mark.slow
def test_densenet121_at_224_px() -> None:
    model = arch.densenet121().eval()
    check_against_gradients(model, list(arch.densenet_aliases().values()), 224)


def test_dense_blocks_join_their_inputs_boxes() -> None:
    """A narrow DenseNet whose boxes fit in the image: the concatenation's union is seen whole."""
    model = narrow_densenet().eval()
    names = [
        "features.denseblock1",
        "features.transition1",
        "features.denseblock2",
        "features.denseblock3",
        "features.denseblock2.denselayer3.conv2",
    ]
    check_against_gradients(model, names, 160)


def test_googlenet_shaped_parallel_branches() -> None:
    geometries = check_against_gradients(GoogLeNetShaped().eval(), GOOGLENET_LAYERS, 224)
    # The 5x5 branch is the widest of inception3a's four, so the block's box is that branch's.
    block, branch = geometries["inception3a"], geometries["inception3a.branch3"]
    assert (block.rf, block.jump, block.start) == (branch.rf, branch.jump, branch.start)
    assert block.rf > geometries["maxpool2"].rf + 2 * 2 * block.jump - 1


@pytest.mark.parametrize("name", ["alexnet", "alexnet-caffe", "demo"])
def test_builtin_alexnets_and_demo(name: str) -> None:
    net = build_network(name)
    check_against_gradients(net.model, list(net.aliases.values()), net.preprocessing.input_size)


class Shifted(nn.Module):
    """Dilation, asymmetric zero padding, "same" padding and a strided average pool in one chain."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((2, 0, 2, 0))
        self.dilated = nn.Conv2d(3, 4, 3, dilation=2)
        self.same = nn.Conv2d(4, 4, 4, padding="same")
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.down = nn.Conv2d(4, 4, 1, stride=2)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.pool(self.act(self.same(self.dilated(self.pad(x))))))


def test_dilation_asymmetric_and_same_padding_average_pools() -> None:
    geometries = check_against_gradients(Shifted().eval(), ["dilated", "same", "pool", "down"], 40)
    assert geometries["dilated"].rf == 5 and geometries["dilated"].start == 0.0  # (2 - 2) + 4 / 2


def test_a_global_pool_sees_the_whole_image() -> None:
    model = build_network("demo").model
    g = layer_geometry(model, "classifier.0", 64)
    assert (g.height, g.width) == (1, 1) and g.rf >= 64
    assert g.start - (g.rf - 1) / 2 <= 0 and g.start + (g.rf - 1) / 2 >= 63


def test_a_module_of_unknown_geometry_is_named() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.Upsample(scale_factor=2)
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.up(x))

    with pytest.raises(NetworkError, match=r"geometry of up \(Upsample\) cannot be known"):
        layer_geometry(Odd(), "conv", 32)

    class Branching(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) if x.sum() > 0 else -self.conv(x)

    with pytest.raises(NetworkError, match="Cannot trace module"):
        layer_geometry(Branching(), "conv", 32)


def test_every_builtin_alias_resolves() -> None:
    for name, spec in BUILTINS.items():
        model = spec.factory()
        modules = dict(model.named_modules())
        assert all(target in modules for target in spec.aliases.values()), name


def test_an_input_too_small_for_the_network_is_a_clear_error() -> None:
    net = build_network("vgg16")
    with pytest.raises(NetworkError, match="does not run on 16 x 16 px input up to features.30: .*too small"):
        layer_geometry(net.model, "features.30", 16)
