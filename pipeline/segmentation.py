"""Stage 4: segment each top image by the unit's RF and render what annotators see."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline.geometry import LayerGeometry
from pipeline.receptive_field import rf_extent


def rf_kernel(rf: np.ndarray, geometry: LayerGeometry, threshold: float = 0.5) -> np.ndarray:
    """The binary stamp, centred on the canvas centre; the theoretical square when the RF is flat."""
    kernel = rf_extent(rf, threshold)
    if not kernel.any():
        centre, half = rf.shape[0] // 2, geometry.rf // 2
        kernel[max(0, centre - half) : centre + half + 1, max(0, centre - half) : centre + half + 1] = True
    return kernel


def segment(
    feature_map: np.ndarray, kernel: np.ndarray, geometry: LayerGeometry, size: int, activation_threshold: float = 0.5
) -> np.ndarray:
    """Union of RF stamps at every map position above `activation_threshold` x the map's maximum."""
    mask = np.zeros((size, size), dtype=bool)
    top = float(feature_map.max())
    if top <= 0:
        return mask
    centre = kernel.shape[0] // 2
    for y, x in np.argwhere(feature_map > activation_threshold * top):
        cy, cx = (int(round(c)) for c in geometry.centre(int(y), int(x)))
        # Kernel rows/cols that land inside the image when its centre sits on (cy, cx).
        y0, y1 = max(0, cy - centre), min(size, cy - centre + kernel.shape[0])
        x0, x1 = max(0, cx - centre), min(size, cx - centre + kernel.shape[1])
        if y0 >= y1 or x0 >= x1:
            continue
        ky, kx = y0 - (cy - centre), x0 - (cx - centre)
        mask[y0:y1, x0:x1] |= kernel[ky : ky + y1 - y0, kx : kx + x1 - x0]
    return mask


SHOWN_PX = 256  # what annotators see: twice the HIT page's 128-px tiles, sharp on high-density screens


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A square mask at `size` x `size` (nearest neighbour: a pixel is in or out, never half)."""
    picture = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(picture) > 127


def render(image: np.ndarray, mask: np.ndarray, dim: float = 0.2) -> np.ndarray:
    """Keep the masked pixels, dim the rest to `dim` of their brightness (H x W x 3 uint8)."""
    scale = np.where(mask[..., None], 1.0, dim)
    return (image.astype(np.float32) * scale + 0.5).astype(np.uint8)


def render_rf(rf: np.ndarray) -> np.ndarray:
    """The averaged RF as a heat picture (white = strongest), cropped to where it is not negligible."""
    top = float(rf.max())
    if top <= 0:
        return np.zeros((8, 8, 3), dtype=np.uint8)
    norm = rf / top
    rows, cols = np.nonzero(norm > 0.05)
    norm = norm[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    heat = np.stack([norm, norm**2, norm**4], axis=-1)  # black -> red -> yellow -> white
    return (heat * 255 + 0.5).astype(np.uint8)
