import json

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from annotator.models import Dissection, Image, Layer, ReceptiveField, Segmentation, TopImage, Unit
from annotator.services import dissection as service
from pipeline.networks import AlexNet
from tests.annotator.helpers import dissect_args, snapshot

pytestmark = pytest.mark.django_db


def add_bad_files(folder):
    (folder / "notes.txt").write_text("a README that is not an image")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    PILImage.new("CMYK", (80, 60), (0, 200, 200, 0)).save(folder / "cmyk.jpg")  # odd mode, still fine


def test_dissect_produces_top_images_rfs_and_segmentations_and_reports_skips(image_dir, capsys):
    add_bad_files(image_dir)
    call_command(*dissect_args(image_dir))
    out = capsys.readouterr().out
    assert "demo: 49 images read, 3 skipped." in out
    for name in ("notes.txt", "empty.jpg", "broken.png"):
        assert f"skipped {name}:" in out
    assert Image.objects.get(path="cmyk.jpg").status == Image.Status.OK
    assert Image.objects.filter(status=Image.Status.UNREADABLE).count() == 3
    conv3 = Layer.objects.get(name="conv3")
    assert (conv3.module_name, conv3.num_units, conv3.rf_theoretical_px) == ("features.6", 64, 20)
    assert TopImage.objects.filter(unit__layer=conv3).count() == 64 * 6
    assert not TopImage.objects.filter(image__status=Image.Status.UNREADABLE).exists()
    assert ReceptiveField.objects.count() == Unit.objects.count() == 128
    assert Segmentation.objects.count() == TopImage.objects.count()
    # Annotators see each segmentation at 256 px (twice a 128-px tile), lit where the 64-px mask is.
    from annotator.services import artifacts

    seg = Segmentation.objects.filter(coverage__gt=0.2, coverage__lt=0.8).first()
    shown = np.asarray(artifacts.read_picture(seg.rendered_path).convert("L"), dtype=float)
    mask = np.asarray(artifacts.read_picture(seg.mask_path)) > 0
    assert shown.shape == (256, 256) and mask.shape == (64, 64)
    lit = np.kron(mask, np.ones((4, 4), bool))
    assert shown[lit].mean() > 2 * shown[~lit].mean()
    rf = ReceptiveField.objects.filter(unit__layer=conv3).values_list("empirical_px", flat=True)
    assert all(0 < px <= 20 for px in rf)
    assert Dissection.objects.get().stage == Dissection.Stage.DONE


def test_top_images_are_ranked_by_score(image_dir):
    call_command(*dissect_args(image_dir, layers="conv3"))
    for unit in Unit.objects.all()[:10]:
        scores = list(unit.top_images.order_by("rank").values_list("score", flat=True))
        assert scores == sorted(scores, reverse=True)


def test_rerunning_a_finished_dissection_does_nothing(image_dir, monkeypatch, capsys):
    call_command(*dissect_args(image_dir, layers="conv3"))
    before = snapshot("demo")
    calls = []
    monkeypatch.setattr(service, "STEPS", {k: (lambda d, i, k=k: calls.append(k)) for k in service.STEPS})
    call_command(*dissect_args(image_dir, layers="conv3"))
    assert calls == []
    assert "already complete; nothing to do" in capsys.readouterr().out
    assert snapshot("demo") == before


def test_same_name_with_other_settings_is_refused(image_dir):
    call_command(*dissect_args(image_dir, layers="conv3"))
    with pytest.raises(CommandError, match="exists with other settings .*top_k: stored 6, now 9"):
        call_command(*[a if a != "6" else "9" for a in dissect_args(image_dir, layers="conv3")])


def test_unknown_layer_and_missing_folder_are_clear_errors(image_dir, tmp_path):
    with pytest.raises(CommandError, match="Unknown layer\\(s\\): pool9"):
        call_command(*dissect_args(image_dir, layers="conv3,pool9"))
    with pytest.raises(CommandError, match="Image folder not found"):
        call_command(*dissect_args(tmp_path / "nowhere"))
    assert not Dissection.objects.exists()


def test_wrong_weights_file_names_the_mismatching_keys(image_dir, tmp_path):
    torch.save(AlexNet().state_dict(), tmp_path / "alexnet.pth")
    args = dissect_args(image_dir) + ["--weights", str(tmp_path / "alexnet.pth")]
    with pytest.raises(CommandError) as info:
        call_command(*args)
    message = str(info.value)
    assert "Missing keys (2): classifier.2.bias, classifier.2.weight" in message
    assert "Unexpected keys (10): classifier.1.bias" in message
    assert "features.0.weight: network has [32, 3, 5, 5], file has [64, 3, 11, 11]" in message


def test_folder_with_no_readable_image_fails_clearly(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(CommandError, match="No readable images"):
        call_command(*dissect_args(tmp_path))


def test_status_shows_progress_per_stage(image_dir, capsys):
    call_command(*dissect_args(image_dir, layers="conv3"))
    call_command("dissect", "--status", "--name", "demo")
    out = capsys.readouterr().out
    assert "stage done" in out
    assert "images through the network: 48/48 (100%)" in out
    assert "units segmented: 64/64 (100%)" in out


def test_export_json_and_csv(image_dir, tmp_path):
    call_command(*dissect_args(image_dir, layers="conv3"))
    call_command("export", "--format", "json", "--network", "demo", "--output", str(tmp_path / "u.json"))
    records = json.loads((tmp_path / "u.json").read_text())
    assert len(records) == 64
    first = records[0]
    assert {k: first[k] for k in ("network", "layer", "unit", "rf_theoretical_px", "status", "label")} == {
        "network": "demo",
        "layer": "conv3",
        "unit": 0,
        "rf_theoretical_px": 20,
        "status": "pending",
        "label": None,
    }
    assert 0 < first["rf_empirical_px"] <= 20 and first["answers"] == []
    top = TopImage.objects.filter(unit__index=0, unit__layer__name="conv3").order_by("rank")
    assert first["top_images"] == [{"image": t.image.path, "score": t.score} for t in top]
    call_command("export", "--format", "csv", "--layer", "conv3", "--output", str(tmp_path / "u.csv"))
    lines = (tmp_path / "u.csv").read_text().splitlines()
    assert lines[0].startswith("network,layer,unit,rf_theoretical_px,rf_empirical_px,top_image,top_score,label")
    assert len(lines) == 65 and lines[1].startswith(f"demo,conv3,0,20,{first['rf_empirical_px']},{top[0].image.path}")
    with pytest.raises(CommandError, match="No units match"):
        call_command("export", "--network", "nope")
