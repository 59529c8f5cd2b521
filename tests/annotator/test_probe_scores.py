"""Every unit's score on every probe image: kept by `dissect` chunk by chunk beside the top images, the
same as the top images' own scores, and made for an older dissection by `probe_scores`, which runs only
the activation pass for the chunks that lack them (interrupted, it resumes)."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotator.models import Dissection, Image, Layer, TopImage
from annotator.services import artifacts
from annotator.services.probe import probe_path, probe_scores
from tests.annotator.helpers import dissect_args
from tests.annotator.test_dissect_command import add_bad_files

pytestmark = pytest.mark.django_db


def test_dissect_keeps_every_readable_images_scores_and_probe_scores_fills_what_is_missing(image_dir, capsys):
    add_bad_files(image_dir)
    call_command(*dissect_args(image_dir, layers="conv3,pool2"))
    dissection = Dissection.objects.get()
    conv3 = Layer.objects.get(name="conv3")
    ids, scores = probe_scores(dissection, conv3, list(range(64)))
    readable = set(Image.objects.filter(status=Image.Status.OK).values_list("pk", flat=True))
    assert set(ids.tolist()) == readable and len(ids) == len(readable) == 49 and scores.shape == (49, 64)
    row = {int(image_id): i for i, image_id in enumerate(ids)}
    for top in TopImage.objects.filter(unit__layer=conv3).select_related("unit")[:50]:
        assert scores[row[top.image_id], top.unit.index] == pytest.approx(top.score, rel=1e-5)
    _, means = probe_scores(dissection, conv3, [0, 5], kind="mean")
    assert means.shape == (49, 2) and (means <= scores[:, [0, 5]] + 1e-6).all(), "a mean never beats the maximum"

    before = {c.index: artifacts.read_arrays(probe_path(dissection, c.index)) for c in dissection.chunks.all()}
    lost = dissection.chunks.order_by("index").first()
    artifacts.media_path(probe_path(dissection, lost.index)).unlink()
    with pytest.raises(Exception, match="run `manage.py probe_scores demo` first"):
        probe_scores(dissection, conv3, [0])
    capsys.readouterr()
    call_command("probe_scores", "demo")
    count = dissection.chunks.count()
    assert f"1 chunk(s) computed now, {count - 1} kept" in capsys.readouterr().out
    for index, arrays in before.items():
        again = artifacts.read_arrays(probe_path(dissection, index))
        assert all(np.allclose(arrays[k], again[k], atol=1e-5) for k in arrays)
    call_command("probe_scores", "demo")
    assert f"0 chunk(s) computed now, {count} kept" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No dissection of a network named 'nope'"):
        call_command("probe_scores", "nope")
