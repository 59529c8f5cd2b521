"""Small dissections that run in seconds: the demo network on the session's demo images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings as django_settings
from PIL import Image as PILImage

from annotator.models import Network, TopImage

FAST = ["--top-k", "6", "--rf-images", "2", "--occluder-stride", "4", "--batch-size", "16", "--chunk-size", "10",
        "--quiet"]


def dissect_args(images: Path, name: str = "demo", layers: str = "conv3,pool2") -> list[str]:
    return ["dissect", "--network", "demo", "--layers", layers, "--images", str(images), "--name", name, *FAST]


def snapshot(name: str) -> dict:
    """Everything a dissection produced, independent of database ids and file locations."""
    network = Network.objects.get(name=name)
    result = {}
    tops = TopImage.objects.filter(unit__layer__network=network).select_related(
        "unit__layer", "image", "segmentation", "unit__receptive_field").order_by("unit__layer__order", "unit__index",
                                                                                 "rank")
    for top in tops:
        mask = np.asarray(PILImage.open(Path(django_settings.MEDIA_ROOT) / top.segmentation.mask_path))
        result[(top.unit.layer.name, top.unit.index, top.rank)] = (
            top.image.path, round(top.score, 4), top.argmax_y, top.argmax_x,
            round(top.unit.receptive_field.empirical_px, 4), int(mask.sum()))
    return result
