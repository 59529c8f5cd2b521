import io

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.images import UnreadableImage, crop_square, find_images, load_batch, load_rgb, to_tensor
from pipeline.networks import Preprocessing


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_modes_all_decode_to_rgb(tmp_path):
    grey = save(Image.new("L", (20, 10), 128), tmp_path / "grey.png")
    rgba = save(Image.new("RGBA", (20, 10), (255, 0, 0, 0)), tmp_path / "rgba.png")
    cmyk = save(Image.new("CMYK", (20, 10), (0, 255, 255, 0)), tmp_path / "cmyk.jpg")
    palette = save(Image.new("RGB", (20, 10), (0, 0, 255)).convert("P"), tmp_path / "pal.png")
    sixteen = save(Image.fromarray(np.full((10, 20), 65535, dtype=np.uint16)), tmp_path / "16.png")
    for path in (grey, rgba, cmyk, palette, sixteen):
        img = load_rgb(path)
        assert img.mode == "RGB" and img.size == (20, 10), path
    assert load_rgb(grey).getpixel((0, 0)) == (128, 128, 128)
    assert load_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white background
    assert load_rgb(sixteen).getpixel((0, 0)) == (255, 255, 255)  # full 16-bit range -> full 8-bit
    red, green, blue = load_rgb(cmyk).getpixel((0, 0))
    assert red > 200 and green < 60 and blue < 60
    assert load_rgb(palette).getpixel((0, 0)) == (0, 0, 255)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert load_rgb(tmp_path / "rotated.jpg").size == (10, 30)


def test_bad_files_raise_unreadable(tmp_path):
    good = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good, format="JPEG")
    (tmp_path / "truncated.jpg").write_bytes(good.getvalue()[:200])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    for name in ("truncated.jpg", "empty.png", "notes.txt", "garbage.png"):
        with pytest.raises(UnreadableImage):
            load_rgb(tmp_path / name)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    save(Image.new("L", (200, 200)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableImage, match="too large|exceeds"):
        load_rgb(tmp_path / "bomb.png")


def test_find_images_recurses_skips_hidden_and_sorts(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("z.png", "b/a.jpg", "b/c/d.png", ".hidden/x.png", ".dotfile"):
        (tmp_path / rel).write_bytes(b"x")
    assert find_images(tmp_path) == ["b/a.jpg", "b/c/d.png", "z.png"]


def test_crop_and_normalise():
    img = Image.new("RGB", (200, 100), (255, 0, 0))
    cropped = crop_square(img, 50)
    assert cropped.size == (50, 50)
    prep = Preprocessing(50, (0.5, 0.5, 0.5), (0.5, 0.25, 0.5))
    x = to_tensor(cropped, prep)
    assert x.shape == (3, 50, 50)
    assert torch.allclose(x[:, 0, 0], torch.tensor([1.0, -2.0, -1.0]))
    bgr = to_tensor(cropped, Preprocessing(50, (0.0,) * 3, (1.0,) * 3, bgr=True))
    assert torch.allclose(bgr[:, 0, 0], torch.tensor([0.0, 0.0, 1.0]))


def test_load_batch_keeps_going_past_failures(tmp_path):
    save(Image.new("RGB", (10, 10)), tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"broken")
    save(Image.new("RGB", (10, 10)), tmp_path / "c.png")
    batch = load_batch(tmp_path, ["a.png", "b.png", "c.png"], Preprocessing(8), offset=10)
    assert batch.indices == [10, 12] and batch.tensor.shape == (2, 3, 8, 8)
    assert list(batch.failures) == [11]
