"""A presence campaign (the second Task): does each label of an earlier campaign hold beyond its unit's
top images? For every labelled unit, `--images` probe images are drawn by importance sampling guided by
the unit's activation (and the researcher's proxy for the label, if given); the unit's top images are
asked too where `--with-top` says so. HITs ask about one label each, pooling the draws of every unit
with that label, with gold images whose answer is known (a gold CSV, or the demo world's truth).

Everything is checked before anything is written, and the campaign is created in one transaction."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.db import transaction
from django.utils.text import slugify

from annotator.labels import normalise
from annotator.models import Campaign, Hit, HitImage, Image, PresenceDraw, TopImage, UnitLabel
from annotator.services import artifacts
from annotator.services.campaigns import (
    CampaignError,
    CampaignSettings,
    campaign_get,
    campaign_name_check,
    campaign_row,
)
from annotator.services.dissection_setup import DissectionError
from annotator.services.presence_files import gold_read, proxy_read
from annotator.services.probe import probe_scores
from pipeline import images as image_io
from pipeline import presence

PICTURE_PX = 256  # the longer side of a shown image: large enough to judge a small object
UNITS = ("detectors", "labelled")


@dataclass(frozen=True)
class PresenceSettings:
    source: str  # the campaign whose aggregated labels are asked about
    images: int = 180  # draws per unit
    with_top: bool = False
    units: str = "detectors"  # which labelled units: detectors only, or every unit with a label
    proxy: Path | None = None
    gold: Path | None = None
    score: str = "max"  # which probe score guides and is correlated: max (ranks the top images) or mean
    gamma: float = presence.GAMMA

    def check(self) -> None:
        if self.images < 2:
            raise CampaignError("--images must be at least 2 (the correlation needs two images).")
        if self.units not in UNITS:
            raise CampaignError(f"--units must be one of {', '.join(UNITS)}.")
        if not 0 < self.gamma <= 1:
            raise CampaignError("--gamma must be in (0, 1].")


@dataclass
class _Unit:
    unit_id: int
    label: str  # as aggregated (shown)
    key: str  # normalised
    activation: np.ndarray  # standardised, over the probe set
    top: list[int] = field(default_factory=list)  # probe indices


def presence_campaign_create(*, name: str, settings: CampaignSettings, presence_settings: PresenceSettings) -> Campaign:
    settings.check()
    campaign_name_check(name)
    options = presence_settings
    options.check()
    if Campaign.objects.filter(name=name).exists():
        raise CampaignError(f"A campaign named {name!r} exists already; choose another name.")
    source = campaign_get(options.source)
    units, ids = _labelled_units(source, options)
    labels = {unit.key for unit in units}
    paths = dict(Image.objects.filter(pk__in=ids.tolist()).values_list("path", "pk"))
    proxy = proxy_read(options.proxy, paths, labels) if options.proxy else {}
    gold = gold_read(options.gold, paths, labels) if options.gold else _world_gold(source, ids, labels)
    rng = np.random.default_rng(settings.seed)
    draws: list[PresenceDraw] = []
    for unit in units:
        guide = _proxy_column(proxy, unit.key, ids) if any(k == unit.key for k, _ in proxy) else None
        drawn = presence.draw(unit.activation, options.images, rng, guide, np.asarray(unit.top, int), options.gamma)
        for order, (i, weight, top) in enumerate(zip(drawn.images, drawn.weight, drawn.top, strict=True)):
            image_id = int(ids[i])
            score = proxy.get((unit.key, image_id))
            prior = presence.PRIOR if score is None else float(np.clip(score, *presence.PROXY_CLIP))
            draws.append(
                PresenceDraw(
                    unit_id=unit.unit_id,
                    label=unit.label,
                    image_id=image_id,
                    order=order,
                    weight=float(weight),
                    top=bool(top),
                    activation=float(unit.activation[i]),
                    prior=prior,
                )
            )
    shown = {unit.key: unit.label for unit in reversed(units)}  # the label's first unit's spelling
    plans = _hit_plans(name, draws, shown, gold, settings)
    pictures = _pictures(name, {image for plan in plans for image, _, _ in plan[1]})
    with transaction.atomic():
        campaign = campaign_row(
            name=name,
            task="presence",
            network=source.network,
            settings=settings,
            task_settings={
                "from": source.name,
                "images": options.images,
                "with_top": options.with_top,
                "units": options.units,
                "score": options.score,
                "gamma": options.gamma,
                "probe_size": len(ids),
                "proxy": str(options.proxy or ""),
                "gold": str(options.gold) if options.gold else ("demo world" if gold else ""),
                "seed": settings.seed,
            },
        )
        campaign.layers.set(source.layers.all())
        for draw in draws:
            draw.campaign = campaign
        PresenceDraw.objects.bulk_create(draws, batch_size=2000)
        slots = []
        for label, entries in plans:
            hit = Hit.objects.create(campaign=campaign, label=label, unit_images=sum(not g for _, g, _ in entries))
            slots += [
                HitImage(hit=hit, position=p, image_id=image, picture=pictures[image], gold=is_gold, truth=truth)
                for p, (image, is_gold, truth) in enumerate(entries)
            ]
        HitImage.objects.bulk_create(slots, batch_size=2000)
    return campaign


def _labelled_units(source: Campaign, options: PresenceSettings) -> tuple[list[_Unit], np.ndarray]:
    """The source campaign's labelled units with their standardised activations over the probe set, and
    the probe set's image ids (all units of a network share one probe set)."""
    labels = list(
        UnitLabel.objects.filter(unit__hits__campaign=source)
        .distinct()
        .select_related("unit__layer")
        .order_by("unit__layer_id", "unit__index")
    )
    chosen = [
        label for label in labels if normalise(label.final_label) and (options.units == "labelled" or label.is_detector)
    ]
    if not chosen:
        which = "detectors" if options.units == "detectors" else "labelled units"
        raise CampaignError(
            f"Campaign {source.name!r} has no aggregated labels of {which} to ask about: run "
            f"`manage.py aggregate` after its answers are in (or try --units labelled)."
        )
    dissection = getattr(source.network, "dissection", None)
    if dissection is None:
        raise CampaignError(f"The network {source.network.name} of {source.name!r} has no dissection.")
    by_layer: dict[int, list[UnitLabel]] = defaultdict(list)
    for label in chosen:
        by_layer[label.unit.layer_id].append(label)
    units: list[_Unit] = []
    ids = np.zeros(0, np.int64)
    for rows in by_layer.values():
        layer = rows[0].unit.layer
        try:
            ids, scores = probe_scores(dissection, layer, [row.unit.index for row in rows], options.score)
        except (DissectionError, ValueError) as error:
            raise CampaignError(str(error)) from error
        if len(ids) < options.images:
            raise CampaignError(
                f"The probe set of {source.network.name} has {len(ids)} readable images, fewer than the "
                f"{options.images} to draw per unit: lower --images or dissect more images."
            )
        position = {int(image_id): i for i, image_id in enumerate(ids)}
        tops: dict[int, list[int]] = defaultdict(list)
        if options.with_top:
            for unit_id, image_id in (
                TopImage.objects.filter(unit__in=[r.unit for r in rows])
                .order_by("unit_id", "rank")
                .values_list("unit_id", "image_id")
            ):
                if image_id in position:
                    tops[unit_id].append(position[image_id])
        for j, row in enumerate(rows):
            units.append(
                _Unit(
                    row.unit_id,
                    row.final_label,
                    normalise(row.final_label),
                    presence.standardise(scores[:, j]),
                    tops[row.unit_id],
                )
            )
    return units, ids


def _proxy_column(proxy: dict[tuple[str, int], float], key: str, ids: np.ndarray) -> np.ndarray:
    """The proxy's scores of one label over the probe set (0 where the file names no score)."""
    return np.asarray([proxy.get((key, int(image_id)), 0.0) for image_id in ids])


def _world_gold(source: Campaign, ids: np.ndarray, labels: set[str]) -> dict[tuple[str, int], bool]:
    """Without a gold file, the demo world's truth where the images are the demo world's (none else)."""
    from annotator.task_kinds.presence_simulation import label_truth

    truth = label_truth(source.network, ids, labels)
    return {
        (label, int(image_id)): bool(value)
        for label, column in truth.items()
        for image_id, value in zip(ids, column, strict=True)
    }


def _hit_plans(
    name: str,
    draws: list[PresenceDraw],
    shown: dict[str, str],
    gold: dict[tuple[str, int], bool],
    settings: CampaignSettings,
) -> list[tuple[str, list[tuple[int, bool, bool | None]]]]:
    """(label, [(image id, gold, known answer)]) per HIT: the label's distinct drawn images, shuffled,
    in HITs of `images_per_hit - gold_per_hit`, each with gold images of the same label (one present,
    one absent where there are both), never an image the HIT asks about anyway."""
    rng = random.Random(f"{settings.seed}:{name}")
    asked: dict[str, list[int]] = defaultdict(list)
    for draw in draws:
        key = normalise(draw.label)
        if draw.image_id not in asked[key]:
            asked[key].append(draw.image_id)
    per_hit = settings.images_per_hit - settings.gold_per_hit
    plans = []
    for key, images in sorted(asked.items()):
        rng.shuffle(images)
        known = {True: [], False: []}  # type: dict[bool, list[int]]
        for (label, image), present in sorted(gold.items()):
            if label == key:
                known[present].append(image)
        for start in range(0, len(images), per_hit):
            chunk = images[start : start + per_hit]
            entries: list[tuple[int, bool, bool | None]] = [(image, False, None) for image in chunk]
            for g in range(settings.gold_per_hit):
                pool = [i for i in known[g % 2 == 0] or known[g % 2 == 1] if i not in chunk]
                if pool:
                    image = rng.choice(pool)
                    entries.append((image, True, gold[(key, image)]))
            rng.shuffle(entries)
            plans.append((shown[key], entries))
    return plans


def _pictures(name: str, image_ids: set[int]) -> dict[int, str]:
    """Each asked image, whole (no highlight, no crop), its longer side PICTURE_PX: written once."""
    out = {}
    rows = (
        Image.objects.filter(pk__in=image_ids).select_related("image_set").values_list("pk", "image_set__root", "path")
    )
    for image_id, root, path in rows:
        relative = f"presence/{slugify(name)}/{image_id}.jpg"
        if not artifacts.exists(relative):
            picture = image_io.load_rgb(Path(root) / path)
            scale = PICTURE_PX / max(picture.size)
            size = (max(1, round(picture.size[0] * scale)), max(1, round(picture.size[1] * scale)))
            picture = picture.resize(size, resample=3)  # bicubic
            artifacts.write_picture(relative, np.asarray(picture), quality=90)
        out[image_id] = relative
    return out
