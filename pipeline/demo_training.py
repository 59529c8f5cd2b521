"""Train the demo network on the demo world, and check which of its units detect objects.

The check follows Network Dissection: a unit's map, upsampled to the image, is thresholded at its
top `quantile` over the data set and compared with each concept's truth mask by IoU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline import demo_world
from pipeline.activations import feature_maps
from pipeline.images import to_tensor
from pipeline.networks import BUILTINS

# The demo networks the training command makes: builtin name, top layer, committed weights.
DEMO_NETWORKS = {"demo": "features.6", "demo-resnet": "layer3"}


@dataclass
class TrainingResult:
    model: torch.nn.Module
    accuracy: float  # on held-out scenes
    seconds: float


def world_tensors(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Images (N x 3 x 64 x 64, network input), scene labels, and truth (N x layers x 64 x 64)."""
    rng = np.random.default_rng(seed)
    prep = BUILTINS["demo"].preprocessing
    images, labels, truths = [], [], []
    scenes = list(demo_world.SCENES)
    for i in range(count):
        scene = demo_world.make_scene(rng, scenes[i % len(scenes)])
        images.append(to_tensor(scene.image, prep))
        labels.append(scenes.index(scene.scene))
        truths.append(scene.truth)
    return torch.stack(images), torch.tensor(labels), np.stack(truths)


def train(
    count: int = 6000, epochs: int = 12, seed: int = 0, log: bool = True, network: str = "demo"
) -> TrainingResult:
    """Train a demo network (`demo` or `demo-resnet`) on freshly drawn scenes of the demo world."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    x, y, _ = world_tensors(count, seed)
    x_val, y_val, _ = world_tensors(count // 6, seed + 1)
    model = BUILTINS[network].factory(num_classes=len(demo_world.SCENES))
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=4e-3, total_steps=epochs * ((count + 63) // 64))
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(count).split(64):
            batch = x[idx]
            if torch.rand(()) < 0.5:
                batch = batch.flip(-1)  # left-right flips keep a scene a scene
            loss = F.cross_entropy(model(batch), y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        accuracy = evaluate(model, x_val, y_val)
        if log:
            print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, held-out accuracy {accuracy:.3f}")
    model.eval()
    return TrainingResult(model, evaluate(model, x_val, y_val), time.perf_counter() - started)


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        return float((model(x).argmax(1) == y).float().mean())


@dataclass
class UnitMatch:
    unit: int
    concept: str
    category: str
    iou: float


def unit_concept_iou(
    model: torch.nn.Module, module_name: str, x: torch.Tensor, truth: np.ndarray, quantile: float = 0.98
) -> list[UnitMatch]:
    """Each unit's best-matching concept of the demo world over images `x` with their `truth`."""
    with torch.inference_mode():
        maps = torch.cat([feature_maps(model, [module_name], b)[module_name] for b in x.split(256)])
    scaled = F.interpolate(maps, size=truth.shape[-2:], mode="bilinear", align_corners=False).numpy()
    vocab = demo_world.VOCAB
    layer_index = {name: i for i, name in enumerate(demo_world.TRUTH_LAYERS)}
    matches = []
    for unit in range(scaled.shape[1]):
        fired = scaled[:, unit] > np.quantile(scaled[:, unit], quantile)
        best = UnitMatch(unit, "", "", 0.0)
        for concept, info in vocab.items():
            if info["layer"] == "scene":
                continue
            truth_mask = truth[:, layer_index[str(info["layer"])]] == info["id"]
            union = np.logical_or(fired, truth_mask).sum()
            iou = float(np.logical_and(fired, truth_mask).sum() / union) if union else 0.0
            if iou > best.iou:
                best = UnitMatch(unit, concept, str(info["category"]), iou)
        matches.append(best)
    return matches


def save_sheet(images: list[Image.Image], path: str, columns: int = 8) -> None:
    size = images[0].size
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (size[0] * columns, size[1] * rows))
    for i, img in enumerate(images):
        sheet.paste(img, ((i % columns) * size[0], (i // columns) * size[1]))
    sheet.save(path)
