"""Rows for annotation tests without running a dissection: each unit "detects" one demo-world concept,
its top images are the images where the concept covers most pixels (then some where it is absent, so
workers have images to mark), and its segmentations are the concept's true masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from annotator.models import Image, ImageSet, Layer, Network, ReceptiveField, Segmentation, TopImage, Unit
from annotator.services import artifacts
from pipeline import demo_world, segmentation

CONCEPTS = ("car", "house", "tree", "boat", "sky", "wheel")


def concept_mask(truth: np.ndarray, concept: str) -> np.ndarray:
    """N x H x W booleans: where `concept` is in each image."""
    entry = demo_world.VOCAB[concept]
    return truth[:, demo_world.TRUTH_LAYERS.index(entry["layer"])] == entry["id"]


def concept_network(
    world: Path,
    *,
    name: str = "world",
    layer: str = "conv3",
    concepts: tuple[str, ...] = CONCEPTS,
    per_unit: int = 57,
    matching: float = 0.85,
) -> Network:
    """A network whose unit i detects concepts[i] in `matching` of its top images."""
    truth = demo_world.load_truth(world)
    network = Network.objects.create(name=name, architecture="demo", input_size=demo_world.SIZE)
    lay = Layer.objects.create(network=network, name=layer, num_units=len(concepts), order=0)
    image_set, _ = ImageSet.objects.get_or_create(root=str(world / "images"))
    rows = {
        path: Image.objects.get_or_create(image_set=image_set, path=path, defaults={"status": "ok"})[0]
        for path in truth["names"].tolist()
    }
    rng = np.random.default_rng(0)
    for index, concept in enumerate(concepts):
        unit = Unit.objects.create(layer=lay, index=index)
        masks = concept_mask(truth["truth"], concept)
        cover = masks.mean(axis=(1, 2))
        present = [int(i) for i in np.argsort(-cover) if cover[i] > 0][: round(per_unit * matching)]
        absent = [int(i) for i in rng.permutation(np.flatnonzero(cover == 0))][: per_unit - len(present)]
        chosen = present + absent
        order = rng.permutation(len(chosen))
        for rank, k in enumerate(order):
            i = chosen[k]
            path = truth["names"][i]
            top = TopImage.objects.create(
                unit=unit, image=rows[path], rank=rank, score=float(cover[i]), argmax_y=0, argmax_x=0
            )
            mask = masks[i] if cover[i] > 0 else _blob(rng)
            picture = np.asarray(PILImage.open(world / "images" / path).convert("RGB"))
            shown = artifacts.write_picture(
                f"test/{name}/{index}/{rank:03d}.jpg", segmentation.render(picture, mask), quality=90
            )
            mask_path = artifacts.write_picture(f"test/{name}/{index}/{rank:03d}.png", mask.astype(np.uint8) * 255)
            Segmentation.objects.create(
                top_image=top, mask_path=mask_path, rendered_path=shown, coverage=float(mask.mean())
            )
        ReceptiveField.objects.create(unit=unit, empirical_px=20.0, images_used=5, map_path="", picture_path="")
    return network


def _blob(rng: np.random.Generator) -> np.ndarray:
    size = demo_world.SIZE
    y, x = rng.integers(10, size - 10, 2)
    yy, xx = np.mgrid[:size, :size]
    return (yy - y) ** 2 + (xx - x) ** 2 < 81


def answer_hit(
    hit, worker: str, description: str, category: str, *, wrong: int = 0, gold: bool = True, seconds: float = 30.0
):
    """One local worker's answer to `hit` through the real submit service, with what it queues after
    commit run as it would be: `wrong` of the unit's own images marked, gold images marked unless
    `gold` is False (then stored on the third try)."""
    import uuid
    from datetime import timedelta

    from django.test import TestCase
    from django.utils import timezone

    from annotator.models import Assignment, Worker
    from annotator.services.answers import answer_submit

    person = Worker.objects.get_or_create(kind=Worker.Kind.LINK, external_id=worker)[0]
    taken = set(hit.assignments.exclude(slot=None).values_list("slot", flat=True))
    slot = next(s for s in range(100) if s not in taken)
    now = timezone.now()
    assignment = Assignment.objects.create(
        hit=hit,
        worker=person,
        slot=slot,
        external_id=uuid.uuid4().hex,
        opened_at=now - timedelta(seconds=seconds),
        expires_at=now + timedelta(minutes=30),
    )
    own = list(hit.slots.filter(gold=False).values_list("position", flat=True))
    golds = list(hit.slots.filter(gold=True).values_list("position", flat=True))
    marked = own[:wrong] + (golds if gold else [])
    data = {"description": description, "category": category, "mismatch": [str(p) for p in marked]}
    for _ in range(3):
        with TestCase.captureOnCommitCallbacks(execute=True):
            result = answer_submit(assignment_pk=assignment.pk, data=data, now=now)
        if result.answer is not None:
            return result.answer
        assert result.gold_retry, result.form.errors
    raise AssertionError("the answer was not stored")


def put_on_mturk(campaign_name: str, environment: str = "sandbox") -> list:
    """Mark a campaign published on MTurk as if `publish` had run: its HITs get ids H1, H2, ... in order
    (the hitId the HIT page then requires)."""
    from annotator.models import Campaign, Hit

    Campaign.objects.filter(name=campaign_name).update(platform="mturk", environment=environment, status="published")
    hits = list(Hit.objects.filter(campaign__name=campaign_name).select_related("campaign").order_by("id"))
    for number, hit in enumerate(hits, start=1):
        hit.remote_id = f"H{number}"
        hit.save(update_fields=["remote_id"])
    return hits


def as_mturk_answer(answer, assignment_id: str):
    """Turn an answer stored by `answer_hit` into an MTurk assignment's, confirmed as sync does once
    MTurk lists it (counted, and the unit aggregated again)."""
    from annotator.models import Answer, Assignment, Worker
    from annotator.services.aggregation import units_aggregate
    from annotator.services.answers import answers_settle

    Answer.objects.filter(pk=answer.pk).update(source="mturk", confirmation=Answer.Confirmation.CONFIRMED)
    Assignment.objects.filter(pk=answer.assignment_id).update(external_id=assignment_id)
    Worker.objects.filter(pk=answer.worker_id).update(kind="mturk", environment=answer.hit.campaign.environment)
    answers_settle([answer.pk])
    units_aggregate(unit_ids=[answer.unit_id])
    answer.refresh_from_db()
    return answer


def presence_world(
    world: Path, *, concepts: tuple[str, ...] = ("car", "house", "tree", "sky"), strength: float = 1.0, chunks: int = 2
) -> Network:
    """`concept_network` with a finished dissection whose probe scores are known: unit i's score on an
    image is `strength` where concepts[i] is in it, plus unit-variance noise (so its true correlation with
    the label is known), and each unit labelled concepts[i], a detector, by an aggregated campaign `c`."""
    from annotator.models import ActivationChunk, Answer, Campaign, Dissection, Hit, UnitLabel
    from annotator.services.aggregation import units_aggregate
    from annotator.services.probe import probe_path
    from pipeline import crowd

    network = concept_network(world, concepts=concepts, per_unit=20, matching=0.8)
    layer = network.layers.get()
    truth = demo_world.load_truth(world)
    image_ids = list(
        Image.objects.filter(image_set__root=str(world / "images")).order_by("id").values_list("id", "path")
    )
    row = {name: i for i, name in enumerate(truth["names"].tolist())}
    dissection = Dissection.objects.create(
        network=network,
        image_set=ImageSet.objects.get(root=str(world / "images")),
        settings={"image_count": len(image_ids)},
        stage="done",
    )
    rng = np.random.default_rng(1)
    present = np.stack([crowd.presence_truth(truth, c)[[row[p] for _, p in image_ids]] for c in concepts], axis=1)
    scores = (strength * present + rng.normal(size=present.shape)).astype(np.float32)
    bounds = np.linspace(0, len(image_ids), chunks + 1).astype(int)
    for index in range(chunks):
        lo, hi = bounds[index], bounds[index + 1]
        ActivationChunk.objects.create(
            dissection=dissection, index=index, first_image=lo, image_count=hi - lo, done=True
        )
        ids = np.asarray([i for i, _ in image_ids[lo:hi]], np.int64)
        artifacts.write_arrays(
            probe_path(dissection, index),
            {f"{layer.pk}.ids": ids, f"{layer.pk}.max": scores[lo:hi], f"{layer.pk}.mean": scores[lo:hi] / 2},
        )
    campaign = Campaign.objects.create(name="c", network=network, status="published")
    campaign.layers.set([layer])
    for unit, concept in zip(layer.units.order_by("index"), concepts, strict=True):
        Hit.objects.create(campaign=campaign, unit=unit, unit_images=18)
        for _ in range(3):  # three imported answers agreeing on the concept, 80% precision: a detector
            Answer.objects.create(
                unit=unit, source="imported", description=concept, category="object", precision=0.8, counts=True
            )
    units_aggregate(network=network.name)
    assert UnitLabel.objects.filter(unit__layer=layer, status="detector").count() == len(concepts)
    return network
