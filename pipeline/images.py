"""Images in, tensors out: find files, decode any mode robustly, crop as the network sees them.

A file that cannot be decoded is reported with its reason and skipped; it never stops a run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from pipeline.networks import Preprocessing


class UnreadableImage(ValueError):
    """A file that is not an image we can decode; the message says why."""


def find_images(root: str | Path) -> list[str]:
    """Every regular file under `root`, recursively, as sorted POSIX paths relative to it.

    Hidden files and folders are left out; decoding decides what is an image, not the extension.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder not found: {root}")
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            found.append(rel.as_posix())
    return sorted(found)


def load_rgb(path: str | Path) -> Image.Image:
    """Decode to 8-bit RGB: EXIF orientation applied, alpha composited on white, 16-bit scaled down.

    Decompression bombs, truncated files and non-images raise UnreadableImage.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return _to_rgb(ImageOps.exif_transpose(img))
    except FileNotFoundError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"too large to decode safely ({exc})") from exc
    except Exception as exc:  # PIL raises many unrelated types for bad data
        reason = str(exc) or type(exc).__name__
        raise UnreadableImage(reason) from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale the full range to 8 bits rather than clipping at 255.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        img = Image.fromarray(((arr - lo) / (hi - lo or 1.0) * 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def crop_square(img: Image.Image, size: int) -> Image.Image:
    """Shorter side resized to `size`, then the centre `size` x `size` square: what the network sees."""
    w, h = img.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_tensor(img: Image.Image, prep: Preprocessing) -> torch.Tensor:
    """A cropped RGB image as a normalised 3 x S x S float tensor in the network's channel order."""
    arr = np.asarray(img, dtype=np.float32) / 255.0  # S x S x 3
    mean = np.asarray(prep.mean, dtype=np.float32)
    std = np.asarray(prep.std, dtype=np.float32)
    arr = (arr - mean) / std
    if prep.bgr:
        arr = arr[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def pixels_to_input(pixels: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """Map raw [0, 1] RGB values (..., 3, H, W) into input space: used to paint random occluders."""
    mean = torch.tensor(prep.mean, dtype=pixels.dtype).view(3, 1, 1)
    std = torch.tensor(prep.std, dtype=pixels.dtype).view(3, 1, 1)
    out = (pixels - mean) / std
    return out.flip(-3) if prep.bgr else out


@dataclass
class LoadedBatch:
    indices: list[int]  # positions in the caller's list that decoded
    tensor: torch.Tensor  # N x 3 x S x S
    failures: dict[int, str]  # position -> reason


def load_batch(root: str | Path, relpaths: list[str], prep: Preprocessing, offset: int = 0) -> LoadedBatch:
    """Decode and preprocess a list of images, collecting failures instead of raising."""
    tensors, indices, failures = [], [], {}
    for i, rel in enumerate(relpaths):
        try:
            img = load_rgb(Path(root) / rel)
        except (UnreadableImage, OSError) as exc:
            failures[offset + i] = str(exc)
            continue
        tensors.append(to_tensor(crop_square(img, prep.input_size), prep))
        indices.append(offset + i)
    size = prep.input_size
    tensor = torch.stack(tensors) if tensors else torch.empty(0, 3, size, size)
    return LoadedBatch(indices, tensor, failures)
