"""Dissecting residual networks end to end: a Places365-format ResNet-18 checkpoint on a folder of
photos, and a residual network with a planted red detector whose segmentations must land on red."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from django.core.management import call_command
from PIL import Image as PILImage

from annotator.models import Dissection, Layer, ReceptiveField, Segmentation, TopImage, Unit
from annotator.services import artifacts
from pipeline import architectures

pytestmark = pytest.mark.django_db


@pytest.fixture
def photos(tmp_path, demo_dir):
    """The demo scenes as JPEG photos of another size (the loader resizes and crops to 224 px)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted((demo_dir / "images").rglob("*.png"))[:24]:
        PILImage.open(path).convert("RGB").resize((200, 150)).save(folder / f"{path.stem}.jpg", quality=90)
    return folder


@pytest.mark.slow
def test_resnet18_places365_checkpoint_layer3_layer4_end_to_end(tmp_path, photos, capsys):
    torch.manual_seed(0)
    source = architectures.resnet18(num_classes=365)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    weights = tmp_path / "resnet18_places365.pth.tar"
    torch.save({"epoch": 90, "arch": "resnet18", "state_dict": state, "best_prec1": 54.7}, weights)
    call_command(
        "dissect",
        "--network",
        "resnet18",
        "--weights",
        str(weights),
        "--layers",
        "layer3,layer4",
        "--images",
        str(photos),
        "--top-k",
        "2",
        "--rf-images",
        "1",
        "--occluder-stride",
        "24",
        "--quiet",
    )
    out = capsys.readouterr().out
    assert "full forward passes" not in out  # the cone sweep follows the residual graph
    assert "resnet18: 24 images read, 0 skipped." in out
    layer3, layer4 = Layer.objects.get(name="layer3"), Layer.objects.get(name="layer4")
    assert (layer3.rf_theoretical_px, layer3.rf_jump, layer3.num_units, layer3.map_width) == (211, 16, 256, 14)
    assert (layer4.rf_theoretical_px, layer4.rf_jump, layer4.num_units, layer4.map_width) == (435, 32, 512, 7)
    assert Dissection.objects.get().stage == Dissection.Stage.DONE
    assert ReceptiveField.objects.count() == Unit.objects.count() == 256 + 512
    assert Segmentation.objects.count() == TopImage.objects.count() == 2 * (256 + 512)


def red_square_scenes(folder, count: int = 10, side: int = 128, square: int = 28) -> dict[str, tuple[int, int]]:
    """Grey scenes with one red square each at a random place; returns each file's square corner."""
    rng = np.random.default_rng(4)
    corners = {}
    folder.mkdir()
    for i in range(count):
        pixels = np.full((side, side, 3), 128, np.uint8) + rng.integers(-12, 12, (side, side, 3)).astype(np.uint8)
        y, x = (int(v) for v in rng.integers(4, side - square - 4, 2))
        pixels[y : y + square, x : x + square] = (220, 30, 30)
        name = f"scene_{i:02d}.png"
        PILImage.fromarray(pixels).save(folder / name)
        corners[name] = (y, x)
    return corners


@pytest.mark.slow
def test_a_planted_detector_in_a_residual_network_is_segmented_where_it_fires(tmp_path):
    corners = red_square_scenes(tmp_path / "scenes")
    call_command(
        "dissect",
        "--network",
        "tests.pipeline.shapes:red_detector",
        "--input-size",
        "128",
        "--layers",
        "layer2,layer3",
        "--images",
        str(tmp_path / "scenes"),
        "--top-k",
        "6",
        "--occluder-stride",
        "2",
        "--quiet",
    )
    # The planted unit reads one conv1 position through 1x1 branches: its RF is a few pixels, so at
    # layer3's 16-px steps its stamps mark part of each square, and at layer2's 8-px steps most of it.
    for layer, jump, covered in (("layer2", 8, 0.7), ("layer3", 16, 0.15)):
        unit = Unit.objects.get(layer__name=layer, index=0)
        assert unit.layer.rf_jump == jump
        tops = list(unit.top_images.select_related("image", "segmentation"))
        assert len(tops) == 6
        for top in tops:
            mask = np.asarray(artifacts.read_picture(top.segmentation.mask_path)) > 0
            y, x = corners[top.image.path]
            square = np.zeros_like(mask)
            square[y : y + 28, x : x + 28] = True
            near = np.zeros_like(mask)
            near[max(0, y - jump) : y + 28 + jump, max(0, x - jump) : x + 28 + jump] = True
            assert mask[square].mean() > covered, (layer, top.image.path)  # the square is segmented
            assert mask[~near].sum() <= 0.1 * mask.sum(), (layer, top.image.path)  # and little else


def test_the_command_says_once_when_sweeps_fall_back_to_full_passes(image_dir, capsys):
    call_command(
        "dissect",
        "--network",
        "tests.pipeline.shapes:Squashed",
        "--input-size",
        "32",
        "--layers",
        "head",
        "--images",
        str(image_dir),
        "--top-k",
        "2",
        "--occluder-stride",
        "8",
        "--quiet",
    )
    out = capsys.readouterr().out
    assert out.count("full forward passes") == 1
    assert "head: head pads with 'reflect', not zeros" in out
    assert Dissection.objects.get().stage == Dissection.Stage.DONE
