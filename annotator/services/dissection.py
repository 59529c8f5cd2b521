"""Dissection as resumable steps over the database: start, activation chunks, merge, sweeps, units.

The in-process runner (`dissection_run`) and the Celery tasks call the same steps in the same stage
order, so both give the same result; `dissection_advance` is the one place a stage changes.
"""

from __future__ import annotations

from django.utils import timezone

from annotator.models import Dissection
from annotator.selectors import units_with_top_images
from annotator.services import tally_stages
from annotator.services.dissection_setup import DissectionError, DissectionSettings, dissection_start
from annotator.services.dissection_stages import activation_chunk_run, image_sweep_run, top_images_merge, unit_segment

__all__ = [
    "Dissection",
    "DissectionError",
    "DissectionSettings",
    "dissection_advance",
    "dissection_run",
    "dissection_start",
    "pending_steps",
]
Stage = Dissection.Stage


# Moving between stages ---------------------------------------------------------------------------


def pending_steps(dissection: Dissection) -> list[tuple[str, int]]:
    """The steps of the current stage not yet done, as (step name, id) pairs."""
    if dissection.stage == Stage.ACTIVATIONS:
        return [("activation_chunk", i) for i in dissection.chunks.filter(done=False).values_list("index", flat=True)]
    if dissection.stage == Stage.MERGING:
        return [] if dissection.sweeps.exists() else [("top_images_merge", dissection.pk)]
    if dissection.stage in tally_stages.STAGES:
        return tally_stages.pending(dissection, dissection.stage)
    if dissection.stage == Stage.SWEEPS:
        return [("image_sweep", i) for i in dissection.sweeps.filter(done=False).values_list("image_id", flat=True)]
    if dissection.stage == Stage.SEGMENTATION:
        return [("unit_segment", i) for i in units_to_segment(dissection)]
    return []


def units_to_segment(dissection: Dissection) -> list[int]:
    units = units_with_top_images(dissection).filter(receptive_field__isnull=True)
    return list(units.order_by("id").values_list("id", flat=True))


def dissection_advance(dissection_id: int) -> bool:
    """Move to the next stage when the current one has nothing left; True if this call moved it.

    The move is a compare-and-set on the stage, so of several workers finishing at once exactly
    one moves it (and enqueues the next stage).
    """
    dissection = Dissection.objects.get(pk=dissection_id)
    if dissection.stage == Stage.DONE or pending_steps(dissection):
        return False
    following = {
        Stage.ACTIVATIONS: Stage.MERGING,
        Stage.MERGING: Stage.PROBE_MAPS,
        Stage.PROBE_MAPS: Stage.THRESHOLDS,
        Stage.THRESHOLDS: Stage.TALLY,
        Stage.TALLY: Stage.AUTO_LABELS,
        Stage.AUTO_LABELS: Stage.SWEEPS,
        Stage.SWEEPS: Stage.SEGMENTATION,
        Stage.SEGMENTATION: Stage.DONE,
    }
    update = {"stage": following[Stage(dissection.stage)], "updated_at": timezone.now()}
    if update["stage"] == Stage.DONE:
        update["finished_at"] = timezone.now()
    return bool(Dissection.objects.filter(pk=dissection_id, stage=dissection.stage).update(**update))


STEPS = {  # step name -> callable(dissection_id, ident)
    "activation_chunk": activation_chunk_run,
    "top_images_merge": lambda dissection_id, _ident: top_images_merge(dissection_id),
    **tally_stages.STEPS,
    "image_sweep": image_sweep_run,
    "unit_segment": unit_segment,
}


def dissection_run(dissection_id: int, progress: bool = True) -> Dissection:
    """Run every remaining step in this process, stage by stage, with a progress bar per stage."""
    from tqdm import tqdm

    labels = {
        Stage.ACTIVATIONS: "activations",
        Stage.MERGING: "top images",
        Stage.PROBE_MAPS: "probe set's maps",
        Stage.THRESHOLDS: "IoU thresholds",
        Stage.TALLY: "IoU tally",
        Stage.AUTO_LABELS: "automatic labels",
        Stage.SWEEPS: "occlusion sweeps",
        Stage.SEGMENTATION: "segmentation",
    }
    while True:
        dissection = Dissection.objects.get(pk=dissection_id)
        if dissection.stage == Stage.DONE:
            return dissection
        steps = pending_steps(dissection)
        if not steps:  # a stage with nothing to do here (the automatic labels' without a probe set)
            dissection_advance(dissection_id)
            continue
        # Activation chunks count in images, so the bar moves as images go through the network.
        by_chunk = dissection.stage in (Stage.ACTIVATIONS, Stage.PROBE_MAPS, Stage.TALLY)
        sizes = dict(dissection.chunks.values_list("index", "image_count")) if by_chunk else {}
        total = sum(sizes.values()) if sizes else _stage_total(dissection)
        left = sum(sizes[i] for _, i in steps) if sizes else len(steps)
        with tqdm(
            total=total,
            initial=total - left,
            desc=labels[Stage(dissection.stage)],
            disable=not progress,
            unit="image" if sizes or dissection.stage == Stage.SWEEPS else "unit",
            dynamic_ncols=True,
        ) as bar:
            for name, ident in steps:
                STEPS[name](dissection_id, ident)
                bar.update(sizes.get(ident, 1) if sizes else 1)
        dissection_advance(dissection_id)


def _stage_total(dissection: Dissection) -> int:
    """Steps in the current stage (activation chunks are counted in images by the caller)."""
    if dissection.stage == Stage.SWEEPS:
        return dissection.sweeps.count()
    if dissection.stage == Stage.SEGMENTATION:
        return units_with_top_images(dissection).count()
    return 1
