"""Networks to dissect: the built-ins, import paths to any `nn.Module`, weights, layer geometry.

The built-ins use torchvision's module names (`features.0`, `classifier.6`) so that torchvision and
Places365 checkpoints load by state_dict without torchvision being installed.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline import architectures as arch
from pipeline import geometry, graph
from pipeline.geometry import LayerGeometry

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_WEIGHTS = ASSETS / "demo_net.pt"
DEMO_RESNET_WEIGHTS = ASSETS / "demo_resnet.pt"


class DemoNet(nn.Module):
    """The demo world's scene classifier: three conv layers, global average pooling, one linear.

    Global average pooling before the classifier pushes conv3 units towards object detectors.
    """

    def __init__(self, num_classes: int = 6) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=5, padding=2),  # 0 conv1  (32 x 64 x 64)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 2 pool1  (32 x 32 x 32)
            nn.Conv2d(32, 64, kernel_size=3, padding=1),  # 3 conv2  (64 x 32 x 32)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 5 pool2  (64 x 16 x 16)
            nn.Conv2d(64, 64, kernel_size=3, padding=1),  # 6 conv3  (64 x 16 x 16)
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class AlexNet(nn.Module):
    """torchvision's AlexNet (64/192/384/256/256 channels, 224 input)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 12 pool5 (256 x 6 x 6)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class AlexNetCaffe(nn.Module):
    """The Caffe AlexNet the paper dissected (CaffeNet order: pool before LRN, grouped convs, 227 input)."""

    def __init__(self, num_classes: int = 205) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),  # 0 conv1 (96 x 55 x 55)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 2 pool1 (96 x 27 x 27)
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),  # 4 conv2
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 6 pool2 (256 x 13 x 13)
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),  # 8 conv3
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),  # 10 conv4
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),  # 12 conv5
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 14 pool5 (256 x 6 x 6)
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become the network's input: `(x - mean) / std` on [0, 1] RGB, then channel order.

    mean and std are given in R, G, B order whatever the network's channel order.
    """

    input_size: int = 224
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bgr: bool = False


@dataclass(frozen=True)
class Builtin:
    factory: Callable[..., nn.Module]
    preprocessing: Preprocessing
    aliases: dict[str, str] = field(default_factory=dict)
    num_classes_key: str = ""
    default_weights: Path | None = None


BUILTINS: dict[str, Builtin] = {
    "demo": Builtin(
        DemoNet,
        Preprocessing(64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        {
            "conv1": "features.0",
            "pool1": "features.2",
            "conv2": "features.3",
            "pool2": "features.5",
            "conv3": "features.6",
        },
        "classifier.2.weight",
        DEMO_WEIGHTS,
    ),
    "demo-resnet": Builtin(
        arch.DemoResNet,
        Preprocessing(64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        {"conv1": "conv1", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3"},
        "fc.weight",
        DEMO_RESNET_WEIGHTS,
    ),
    "alexnet": Builtin(
        AlexNet,
        Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD),
        {
            "conv1": "features.0",
            "pool1": "features.2",
            "conv2": "features.3",
            "pool2": "features.5",
            "conv3": "features.6",
            "conv4": "features.8",
            "conv5": "features.10",
            "pool5": "features.12",
        },
        "classifier.6.weight",
    ),
    "alexnet-caffe": Builtin(
        AlexNetCaffe,
        # Caffe feeds 0-255 BGR minus the mean: in [0, 1] space that is mean/255 with std 1/255.
        Preprocessing(227, (116.676 / 255, 112.514 / 255, 104.051 / 255), (1 / 255,) * 3, bgr=True),
        {
            "conv1": "features.0",
            "pool1": "features.2",
            "norm1": "features.3",
            "conv2": "features.4",
            "pool2": "features.6",
            "norm2": "features.7",
            "conv3": "features.8",
            "conv4": "features.10",
            "conv5": "features.12",
            "pool5": "features.14",
        },
        "classifier.6.weight",
    ),
    "resnet18": Builtin(
        arch.resnet18, Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD), arch.RESNET_ALIASES, "fc.weight"
    ),
    "resnet50": Builtin(
        arch.resnet50, Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD), arch.RESNET_ALIASES, "fc.weight"
    ),
    "wideresnet18": Builtin(
        arch.wideresnet18,
        Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD),
        {k: v for k, v in arch.RESNET_ALIASES.items() if k != "pool1"},
        "fc.weight",
    ),
    "vgg16": Builtin(
        arch.vgg16, Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD), arch.vgg_aliases(), "classifier.6.weight"
    ),
    "densenet161": Builtin(
        arch.densenet161, Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD), arch.densenet_aliases(), "classifier.weight"
    ),
}


class NetworkError(ValueError):
    """A network, layer or weights file that cannot be used; the message says what to change."""


class WeightsMismatch(NetworkError):
    def __init__(self, missing: list[str], unexpected: list[str], shapes: list[tuple[str, tuple, tuple]]):
        self.missing, self.unexpected, self.shapes = missing, unexpected, shapes
        lines = ["The weights file does not fit the network."]
        if missing:
            lines.append(f"Missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            lines.append(f"Unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        for key, want, got in shapes:
            lines.append(f"Shape mismatch for {key}: network has {list(want)}, file has {list(got)}")
        super().__init__("\n".join(lines))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a plain state_dict or a `{'state_dict': ...}` checkpoint; drop every `module.` in keys.

    Places365 checkpoints were saved from DataParallel, so keys read `features.module.0.weight`.
    """
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"Weights file not found: {path}")
    try:
        data: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise NetworkError(f"Cannot read weights file {path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise NetworkError(f"{path} holds no state_dict (a mapping of names to tensors).")
    return {_modern_key(key.replace("module.", "")): value for key, value in data.items()}


_OLD_DENSE_KEY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


def _modern_key(key: str) -> str:
    """DenseNet checkpoints from before torchvision 0.3 (Places365's among them) name `norm.1`
    what is now `norm1`."""
    return _OLD_DENSE_KEY.sub(r"\1\2.", key)


def load_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load strictly, naming every missing or unexpected key and every shape that differs."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        (k, tuple(own[k].shape), tuple(state[k].shape))
        for k in sorted(set(own) & set(state))
        if own[k].shape != state[k].shape
    ]
    if missing or unexpected or shapes:
        raise WeightsMismatch(missing, unexpected, shapes)
    model.load_state_dict(state)


@dataclass
class LoadedNetwork:
    model: nn.Module
    preprocessing: Preprocessing
    aliases: dict[str, str]


def build_network(
    name: str, weights: str | Path | None = None, preprocessing: Preprocessing | None = None
) -> LoadedNetwork:
    """A ready-to-run network in eval mode from a built-in name or `package.module:factory`.

    A built-in's class count follows its weights file, so Places365 or Places205 heads load as they are.
    """
    state = read_state_dict(weights) if weights else None
    if name in BUILTINS:
        spec = BUILTINS[name]
        if state is None and spec.default_weights is not None and spec.default_weights.is_file():
            state = read_state_dict(spec.default_weights)
        kwargs = {}
        if state is not None and spec.num_classes_key in state:
            kwargs["num_classes"] = int(state[spec.num_classes_key].shape[0])
        model = spec.factory(**kwargs)
        prep, aliases = spec.preprocessing, dict(spec.aliases)
    elif ":" in name:
        factory = import_factory(name)
        try:
            model = factory()
        except (Exception, SystemExit) as exc:  # a user's factory can fail in any way (sys:exit too)
            raise NetworkError(f"Calling {name}() to build the network failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(model, nn.Module):
            raise NetworkError(f"{name} returned {type(model).__name__}, not a torch.nn.Module.")
        prep, aliases = Preprocessing(), {}
    else:
        raise NetworkError(
            f"Unknown network {name!r}: use one of {', '.join(BUILTINS)} or an import path package.module:factory."
        )
    if state is not None:
        load_weights(model, state)
    model.eval()
    return LoadedNetwork(model, preprocessing or prep, aliases)


def import_factory(path: str) -> Callable[[], nn.Module]:
    """The factory named `package.module:attribute`; NetworkError names what is missing."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise NetworkError(f"Network {path!r} is not an import path package.module:factory.")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, TypeError, ValueError) as exc:  # TypeError, ValueError: a relative or empty path
        raise NetworkError(f"Cannot import {module_name!r} for network {path!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise NetworkError(f"Module {module_name!r} has no {attr!r} for network {path!r}.")
    if not callable(factory):
        raise NetworkError(f"{path} is a {type(factory).__name__}, not a function that returns a torch.nn.Module.")
    return factory


def resolve_layers(model: nn.Module, layers: list[str], aliases: dict[str, str]) -> dict[str, str]:
    """Map each requested name (alias or module name) to its module name; unknown names fail together."""
    if not layers:
        raise NetworkError("Name at least one layer to record (--layers conv5 or --layers layer3,layer4).")
    modules = dict(model.named_modules())
    resolved, unknown = {}, []
    for layer in layers:
        module_name = aliases.get(layer, layer)
        if module_name in modules and module_name:
            resolved[layer] = module_name
        else:
            unknown.append(layer)
    if unknown:
        known = ", ".join(list(aliases) + [n for n in modules if n][:40])
        raise NetworkError(f"Unknown layer(s): {', '.join(unknown)}. Known: {known}")
    return resolved


def layer_geometries(model: nn.Module, module_names: list[str], input_size: int) -> dict[str, LayerGeometry]:
    """Each recorded module's geometry, from the network's traced graph (`pipeline.graph`).

    Raises NetworkError naming the module when a geometry cannot be known, or when rows and columns
    differ (a recorded layer must see square boxes for its RF to be one number)."""
    try:
        traced = graph.trace(model, module_names, input_size)
        spans = geometry.spans(traced)
    except graph.GraphError as exc:
        raise NetworkError(str(exc)) from exc
    out = {}
    for name in module_names:
        i = traced.outputs[name]
        rows, cols = spans[i]
        if rows != cols:
            raise NetworkError(
                f"Layer {name} reads {rows.rf} x {cols.rf} px boxes with jumps {rows.jump} and "
                f"{cols.jump}: only layers with square receptive fields can be dissected."
            )
        channels, height, width = traced.nodes[i].shape
        if not channels:
            raise NetworkError(f"Layer {name} has no spatial map (its output is not N x C x H x W).")
        out[name] = LayerGeometry(rows.rf, rows.jump, rows.start, channels, height, width)
    return out


def layer_geometry(model: nn.Module, module_name: str, input_size: int) -> LayerGeometry:
    return layer_geometries(model, [module_name], input_size)[module_name]
