"""Where dissection results live on disk (under MEDIA_ROOT), written atomically so that an
interrupted write never leaves a half file that a resumed run would trust."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image as PILImage


def media_path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def write_bytes(relative: str, data: bytes) -> str:
    path = media_path(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return relative


def write_arrays(relative: str, arrays: dict[str, np.ndarray]) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return write_bytes(relative, buffer.getvalue())


def read_arrays(relative: str, keys: list[str] | None = None) -> dict[str, np.ndarray]:
    """All arrays of an .npz, or only `keys`: members load lazily, so the others are never read."""
    with np.load(media_path(relative)) as data:
        return {key: data[key] for key in (data.files if keys is None else keys)}


def write_npy(relative: str, array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return write_bytes(relative, buffer.getvalue())


def write_picture(relative: str, pixels: np.ndarray, **options: object) -> str:
    buffer = io.BytesIO()
    fmt = "JPEG" if relative.endswith(".jpg") else "PNG"
    PILImage.fromarray(pixels).save(buffer, format=fmt, **options)
    return write_bytes(relative, buffer.getvalue())
