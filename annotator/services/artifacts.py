"""Where dissection results live: the artifact store, a folder (MEDIA_ROOT) by default or any Django
storage, S3 through django-storages when AWS_STORAGE_BUCKET_NAME is set, so workers on several
machines share one. Writes are atomic either way, so an interrupted write never leaves a half file
that a resumed run would trust: a folder gets a temporary file renamed into place, and an S3 object
appears only once its upload completes."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from PIL import Image as PILImage


def _local() -> bool:
    return isinstance(default_storage, FileSystemStorage)


def media_path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def write_bytes(relative: str, data: bytes) -> str:
    if not _local():
        default_storage.save(relative, ContentFile(data))  # the S3 backend overwrites (file_overwrite)
        return relative
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


def exists(relative: str) -> bool:
    return bool(relative) and default_storage.exists(relative)


def servable(relative: str) -> bool:
    """A stored file that may be served: in a local store, a regular file whose real path (symbolic
    links followed) stays inside the store, so a link planted in it cannot expose other files and a
    folder is not a file."""
    if not exists(relative):
        return False
    if not _local():
        return True
    root = Path(settings.MEDIA_ROOT).resolve()
    target = media_path(relative).resolve()
    return target.is_file() and target.is_relative_to(root)


def open_file(relative: str):
    """The stored file, opened for reading (callers close it, or hand it to a FileResponse)."""
    return default_storage.open(relative, "rb")


def read_bytes(relative: str) -> bytes:
    with open_file(relative) as handle:
        return handle.read()


def read_picture(relative: str) -> PILImage.Image:
    with open_file(relative) as handle:
        picture = PILImage.open(io.BytesIO(handle.read()))
        picture.load()
    return picture


def write_arrays(relative: str, arrays: dict[str, np.ndarray]) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub reads ** as allow_pickle
    return write_bytes(relative, buffer.getvalue())


def read_arrays(relative: str, keys: list[str] | None = None) -> dict[str, np.ndarray]:
    """All arrays of an .npz, or only `keys`: from a folder, members load lazily, so the others are
    never read."""
    source = media_path(relative) if _local() else io.BytesIO(read_bytes(relative))
    with np.load(source) as data:
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


def remove_tree(relative: str) -> None:
    """Delete a folder of the store and everything in it (a cache that is no longer needed)."""
    if _local():
        import shutil

        shutil.rmtree(media_path(relative), ignore_errors=True)
        return
    folders, files = default_storage.listdir(relative)
    for name in files:
        default_storage.delete(f"{relative}/{name}")
    for name in folders:
        remove_tree(f"{relative}/{name}")


def remove(relative: str) -> None:
    if exists(relative):
        default_storage.delete(relative)
