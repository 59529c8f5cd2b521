"""The second Task (Oikarinen et al., "Beyond Top Activations", CVPR 2026): "Is there a <label> in this
image?", Yes or No for each of a HIT's whole images. A HIT asks about one label; its images are the
draws of every unit with that label (importance-sampled over the probe set, and the units' top images
where the campaign asks them too), shuffled together with two gold images whose answer is known, so
nothing on the page tells a top image from another. Gold answers do not send the worker back: they
measure the raters' flip rate, which the aggregation needs (`presence_scores`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.urls import reverse

from annotator.forms import PresenceForm
from annotator.models import Answer, Hit, HitImage, PresenceDraw
from annotator.selectors.dashboard import seconds_spent
from annotator.task_kinds.base import PageSlot, Task

if TYPE_CHECKING:
    from annotator.models import Campaign
    from annotator.services.aggregation import AggregationSettings
    from annotator.services.campaigns import CampaignSettings
    from annotator.task_kinds.base import Simulation

RULES = ("gold-failed", "all-same", "too-fast")
ALL_SAME_FROM = 8  # an answer of at least this many images, all Yes or all No, is suspect


def slot_rows(hit: Hit) -> list[tuple[int, int | None, bool, bool | None]]:
    """(position, image id, gold, known answer) of the HIT's slots, in order."""
    return list(
        HitImage.objects.filter(hit=hit).order_by("position").values_list("position", "image_id", "gold", "truth")
    )


def ratings_score(hit: Hit, ratings: Mapping[int, bool]) -> dict[str, Any]:
    """What an answer stores: its ratings by slot position, and how many gold images it answered as
    known (`gold_marked` counts the right ones here)."""
    gold = {position: truth for position, _, is_gold, truth in slot_rows(hit) if is_gold and truth is not None}
    return {
        "ratings": {str(p): bool(v) for p, v in sorted(ratings.items())},
        "gold_total": len(gold),
        "gold_marked": sum(ratings.get(p) == truth for p, truth in gold.items()),
        "precision": None,
    }


def _encode(ratings: Mapping[int, bool]) -> str:
    return ",".join(f"{p}:{'y' if v else 'n'}" for p, v in sorted(ratings.items()))


class PresenceTask(Task):
    name = "presence"
    label = "Is the label in this image? Yes or No (Oikarinen et al. 2026)"
    template = "annotator/presence.html"
    answer_rows_template = "dashboard/_evaluation.html"  # its results on the unit page
    rules = RULES
    images_per_hit = 15
    gold_per_hit = 2

    def create_campaign(self, name: str, settings: CampaignSettings, options: Mapping[str, Any]) -> Campaign:
        """From --from's aggregated labels (with --images, --with-top, --units, --proxy, --gold, --score)."""
        from pathlib import Path

        from annotator.services.campaigns import CampaignError
        from annotator.services.presence import PresenceSettings, presence_campaign_create

        if not options.get("source"):
            raise CampaignError("A presence campaign asks about an earlier campaign's labels: give --from CAMPAIGN.")
        chosen = PresenceSettings(
            source=options["source"],
            images=options.get("images") or 180,
            with_top=bool(options.get("with_top")),
            units=" ".join(options.get("units") or ["detectors"]),  # one word; check() refuses the rest
            proxy=Path(options["proxy"]) if options.get("proxy") else None,
            gold=Path(options["gold"]) if options.get("gold") else None,
            score=options.get("score") or "max",
        )
        return presence_campaign_create(name=name, settings=settings, presence_settings=chosen)

    def units_of(self, hit: Hit) -> list[int]:
        """Every unit whose draws include one of the HIT's (non-gold) images under the HIT's label."""
        images = [image for _, image, gold, _ in slot_rows(hit) if not gold and image is not None]
        return sorted(
            set(
                PresenceDraw.objects.filter(campaign_id=hit.campaign_id, label=hit.label, image_id__in=images)
                .values_list("unit_id", flat=True)
                .distinct()
            )
        )

    def build_hits(self, campaign: Campaign, units: dict[int, list[tuple[int, int]]], *, seed: int) -> None:
        from annotator.services.campaigns import CampaignError

        raise CampaignError(
            "A presence campaign asks about an earlier campaign's labels: create it with "
            "`create_campaign NAME --task presence --from CAMPAIGN`."
        )

    # The page and its form ------------------------------------------------------------------------

    def form(self, hit: Hit, data: Mapping[str, Any] | None = None) -> PresenceForm:
        return PresenceForm(data, positions=[position for position, *_ in slot_rows(hit)])

    def page_context(self, hit: Hit, form: PresenceForm) -> dict[str, Any]:  # type: ignore[override]  # its own form
        given = form.given()
        slots = [
            {"slot": PageSlot(p, reverse("hit-image", args=[hit.key, p]), False), "answer": given.get(p, "")}
            for p in form.positions()
        ]
        return {"slots": slots, "label": hit.label, "answered": len(given)}

    # Checking, scoring and storing an answer --------------------------------------------------------

    def answer_values(self, hit: Hit, cleaned: Mapping[str, Any]) -> dict[str, Any]:
        positions = [position for position, *_ in slot_rows(hit)]
        return ratings_score(hit, {p: cleaned[f"image-{p}"] == "yes" for p in positions})

    def platform_fields(self, answer: Answer) -> dict[str, str]:
        return {"ratings": _encode({int(p): v for p, v in answer.ratings.items()})}

    def parse_platform_fields(self, hit: Hit, fields: Mapping[str, str], positions: Sequence[int]) -> tuple:
        data = {}
        for part in (fields.get("ratings") or "").replace(" ", "").split(","):
            position, _, value = part.partition(":")
            if position:
                data[f"image-{position}"] = {"y": "yes", "n": "no"}.get(value, value)
        form = PresenceForm(data, positions=list(positions))
        if not form.is_valid():
            raise ValueError("; ".join(" ".join(map(str, errors)) for errors in form.errors.values()))
        return tuple(sorted(form.ratings().items()))

    def copy_of(self, answer: Answer) -> tuple:
        return tuple(sorted((int(p), bool(v)) for p, v in answer.ratings.items()))

    def show_copy(self, copy: tuple) -> str:
        return _encode(dict(copy))

    def values_from_copy(self, hit: Hit, copy: tuple) -> dict[str, Any]:
        return ratings_score(hit, dict(copy))

    # Reviewing, aggregating, exporting ----------------------------------------------------------------

    def failed_rules(self, answer: Answer, min_seconds: float) -> list[str]:
        """A gold image answered against what is known, every image given the same answer, too little
        time spent."""
        failed = []
        if answer.gold_total and answer.gold_marked < answer.gold_total:
            failed.append("gold-failed")
        values = set(answer.ratings.values())
        if len(answer.ratings) >= ALL_SAME_FROM and len(values) == 1:
            failed.append("all-same")
        spent = seconds_spent(answer)
        if spent is not None and spent < min_seconds:
            failed.append("too-fast")
        return failed

    def aggregate(self, unit_ids: list[int], settings: AggregationSettings) -> None:
        from annotator.task_kinds.presence_scores import evaluations_aggregate

        evaluations_aggregate(unit_ids, settings)

    def export_answer(self, answer: Answer) -> dict[str, Any]:
        images = dict(HitImage.objects.filter(hit=answer.hit).values_list("position", "image__path"))
        return {
            "worker": answer.worker.external_id if answer.worker else None,
            "label": answer.hit.label if answer.hit else "",
            "ratings": {images.get(int(p), p): ("yes" if v else "no") for p, v in sorted(answer.ratings.items())},
            "gold": f"{answer.gold_marked} of {answer.gold_total} right",
        }

    def simulation(self, campaign: Campaign) -> Simulation:
        from annotator.task_kinds.presence_simulation import PresenceSimulation

        return PresenceSimulation(campaign)
