"""Small networks of the shapes the geometry and the cone sweep must handle, built from the same
blocks as the built-ins: a residual net (the issue's example), a GoogLeNet-shaped net with parallel
branches, and a narrow DenseNet whose receptive fields fit in a small image."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.architectures import BasicBlock, DenseNet, ResNet


def small_resnet() -> ResNet:
    """7x7 stride-2 stem, 3/2 max pool, two basic blocks per stage, 1x1 stride-2 downsample branches."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=10, stem_channels=8)


def narrow_densenet() -> DenseNet:
    return DenseNet(growth=4, blocks=(2, 3, 2), stem=8, bn_size=2, num_classes=10)


class ConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
        )


class Inception(nn.Module):
    """Four parallel branches (1x1; 1x1-3x3; 1x1-5x5; 3x3 max pool-1x1), concatenated."""

    def __init__(self, c_in: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int) -> None:
        super().__init__()
        self.branch1 = ConvBN(c_in, c1, 1)
        self.branch2 = nn.Sequential(ConvBN(c_in, c3r, 1), ConvBN(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(ConvBN(c_in, c5r, 1), ConvBN(c5r, c5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), ConvBN(c_in, cp, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNetShaped(nn.Module):
    """torchvision GoogLeNet's stem and first inception stages (ceil-mode pools), narrow."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvBN(3, 16, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = ConvBN(16, 16, 1)
        self.conv3 = ConvBN(16, 24, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(24, 8, 8, 12, 4, 6, 6)
        self.inception3b = Inception(32, 12, 12, 16, 4, 8, 8)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(44, 16, 8, 16, 4, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        return self.inception4a(x)


GOOGLENET_LAYERS = [
    "conv1",
    "maxpool1",
    "conv3",
    "maxpool2",
    "inception3a",
    "inception3b",
    "maxpool3",
    "inception4a",
    "inception3a.branch3",
]


def red_detector() -> ResNet:
    """A residual network with a planted detector: conv1's channel 0 measures redness (R minus
    the mean of G and B), and every block passes it on (its own convolutions zero, the 1x1 stride-2
    downsample branches copying channel 0), so unit 0 of each stage fires where the image is red."""
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2, stem_channels=8)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.weight.fill_(1.0)
                m.bias.zero_()
        model.conv1.weight[0, 0, 2:5, 2:5] = 1 / 9
        model.conv1.weight[0, 1:, 2:5, 2:5] = -0.5 / 9
        for stage in (model.layer2, model.layer3, model.layer4):
            stage[0].downsample[0].weight[0, 0, 0, 0] = 1.0
    return model.eval()


class Squashed(nn.Module):
    """Convolutions with elementwise activations (an in-place LeakyReLU, a Tanh). With reflect
    padding in the last convolution, a node the cone sweep cannot follow (its geometry is known)."""

    def __init__(self, padding_mode: str = "reflect") -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.leaky = nn.LeakyReLU(0.1, inplace=True)
        self.mid = nn.Conv2d(4, 4, 3, padding=1)
        self.squash = nn.Tanh()
        self.head = nn.Conv2d(4, 4, 3, padding=1, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.squash(self.mid(self.leaky(self.conv(x)))))
