"""ResNet, wide ResNet, VGG and DenseNet, with torchvision's module names and shapes.

torchvision does not import here, so each network is written out; the module names (`layer3.1.conv2`,
`features.denseblock4.denselayer16.norm1`) are torchvision's, so torchvision and Places365 state_dicts
load as they are. The forwards are plain (no tensor-dependent branches) so that `pipeline.graph`
can trace them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """torchvision's bottleneck (the stride on the 3x3 convolution, "ResNet v1.5")."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """torchvision's ResNet. `max_pool=False` and a fixed 14-px average pool give Places365's
    `wideresnet18` (Network Dissection's model): the same weights' names, maps twice as large."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        blocks: list[int],
        num_classes: int = 1000,
        max_pool: bool = True,
        stem_channels: int = 64,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem_channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if max_pool else nn.Identity()
        self.c_in = stem_channels
        widths = [stem_channels * 2**i for i in range(4)]
        self.layer1 = self._stage(block, widths[0], blocks[0], 1)
        self.layer2 = self._stage(block, widths[1], blocks[1], 2)
        self.layer3 = self._stage(block, widths[2], blocks[2], 2)
        self.layer4 = self._stage(block, widths[3], blocks[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1)) if max_pool else nn.AvgPool2d(14)
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)

    def _stage(self, block: type[BasicBlock | Bottleneck], planes: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.c_in != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.c_in, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.c_in, planes, stride, downsample)]
        self.c_in = planes * block.expansion
        layers += [block(self.c_in, planes) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


def wideresnet18(num_classes: int = 365) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, max_pool=False)


VGG16_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    """torchvision's VGG (no batch norm): `features`, a 7x7 adaptive pool, `classifier`."""

    def __init__(self, config: list = VGG16_CONFIG, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg16(num_classes: int = 1000) -> VGG:
    return VGG(VGG16_CONFIG, num_classes)


def vgg_aliases(config: list = VGG16_CONFIG) -> dict[str, str]:
    """conv1_1 .. conv5_3 (the convolutions, as recorded before their ReLU) and pool1 .. pool5."""
    aliases, index, stage, conv = {}, 0, 1, 1
    for item in config:
        if item == "M":
            aliases[f"pool{stage}"] = f"features.{index}"
            index, stage, conv = index + 1, stage + 1, 1
        else:
            aliases[f"conv{stage}_{conv}"] = f"features.{index}"
            index, conv = index + 2, conv + 1
    return aliases


class DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    """Each layer reads the concatenation of the block's input and every earlier layer's output."""

    def __init__(self, count: int, c_in: int, growth: int, bn_size: int) -> None:
        super().__init__({f"denselayer{i + 1}": DenseLayer(c_in + i * growth, growth, bn_size) for i in range(count)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x
        for layer in self.values():
            features = torch.cat([features, layer(features)], 1)
        return features


class Transition(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(c_in))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(c_in, c_out, kernel_size=1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(nn.Module):
    """torchvision's DenseNet: `features.conv0 .. features.norm5`, then ReLU, global pool, classifier."""

    def __init__(
        self, growth: int, blocks: tuple[int, ...], stem: int, bn_size: int = 4, num_classes: int = 1000
    ) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(stem))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        channels = stem
        for i, count in enumerate(blocks):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(count, channels, growth, bn_size))
            channels += count * growth
            if i != len(blocks) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.adaptive_avg_pool2d(F.relu(self.features(x)), (1, 1))
        return self.classifier(torch.flatten(out, 1))


def densenet121(num_classes: int = 1000) -> DenseNet:
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes)


def densenet161(num_classes: int = 1000) -> DenseNet:
    return DenseNet(48, (6, 12, 36, 24), 96, num_classes=num_classes)


def densenet_aliases(blocks: int = 4) -> dict[str, str]:
    aliases = {"conv0": "features.conv0", "pool0": "features.pool0", "norm5": "features.norm5"}
    for i in range(1, blocks + 1):
        aliases[f"denseblock{i}"] = f"features.denseblock{i}"
        if i < blocks:
            aliases[f"transition{i}"] = f"features.transition{i}"
    return aliases


RESNET_ALIASES = {
    "conv1": "conv1",
    "pool1": "maxpool",
    "layer1": "layer1",
    "layer2": "layer2",
    "layer3": "layer3",
    "layer4": "layer4",
}


class DemoResNet(nn.Module):
    """The demo world's residual scene classifier: a 5x5 stem and three stages of one basic block
    (64, 32 and 16 px maps; 1x1 stride-2 downsample branches), global average pooling, one linear.
    Its `layer3` (64 x 16 x 16) matches the demo network's conv3 in size, for side-by-side counts."""

    def __init__(self, num_classes: int = 6) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(32, 32))
        self.layer2 = nn.Sequential(
            BasicBlock(32, 64, 2, nn.Sequential(nn.Conv2d(32, 64, 1, 2, bias=False), nn.BatchNorm2d(64)))
        )
        self.layer3 = nn.Sequential(
            BasicBlock(64, 64, 2, nn.Sequential(nn.Conv2d(64, 64, 1, 2, bias=False), nn.BatchNorm2d(64)))
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
