"""The paper's HIT (METHOD stage 4), the first Task: (1) a word or short description of what the
highlighted regions share, (2) the images that don't match, marked, (3) its category. Gold images of
other units sit at random positions; a careful worker marks them. An answer's precision is the share
of the unit's own images left unmarked; several answers aggregate into a label, a category and a
precision (`annotator.labels`, METHOD stage 5)."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.urls import reverse

from annotator.forms import CATEGORY_EXAMPLES, DESCRIPTION_MAX, HitAnswerForm
from annotator.labels import normalise
from annotator.models import Answer, Category, Hit, HitImage
from annotator.selectors.dashboard import seconds_spent
from annotator.task_kinds.base import ImportFormat, PageSlot, Task

if TYPE_CHECKING:
    from annotator.models import Campaign
    from annotator.services.aggregation import AggregationSettings
    from annotator.task_kinds.base import Simulation

RULES = ("gold-failed", "empty", "nonsense", "too-fast", "marked-all")
MARKED_ALL = 0.9  # an answer marking this share of a HIT's images or more marked "everything"
NONSENSE = {
    "none",
    "nothing",
    "no",
    "na",
    "n a",
    "idk",
    "dont know",
    "don t know",
    "unknown",
    "asdf",
    "test",
    "xxx",
    "yes",
    "ok",
    "good",
    "nice",
    "image",
    "picture",
    "thing",
    "stuff",
}
_REPEATS = re.compile(r"^(.)\1+$")
GOLD_WARNING = (
    "Some images that clearly do not show your description are not marked yet. Look at every "
    "image again and mark each one that does not match, then submit."
)


def answer_score(*, gold: set[int], marked: set[int], unit_images: int) -> tuple[float, int, int]:
    """(precision, gold images shown, gold images marked): precision is the share of the unit's own
    images left unmarked (METHOD stage 5), so marking a gold image costs nothing."""
    wrong = len(marked - gold)
    precision = (unit_images - wrong) / unit_images if unit_images else 0.0
    return precision, len(gold), len(gold & marked)


def hit_positions(hit: Hit) -> tuple[list[int], set[int]]:
    """The HIT's slot positions in order, and the gold ones among them."""
    rows = list(HitImage.objects.filter(hit=hit).order_by("position").values_list("position", "gold"))
    return [position for position, _ in rows], {position for position, gold in rows if gold}


class DescribeTask(Task):
    name = "describe"
    label = "Describe, mark and categorise (Zhou et al. 2015)"
    template = "annotator/hit.html"
    answer_rows_template = "dashboard/_answer_rows.html"
    rules = RULES

    # The HITs -------------------------------------------------------------------------------------

    def build_hits(self, campaign: Campaign, units: dict[int, list[tuple[int, int]]], *, seed: int) -> None:
        """Gold images come from other units of the same layer, one per unit where possible, and never
        show an image that is also among this unit's own."""
        wanted = campaign.images_per_hit - campaign.gold_per_hit
        slots = []
        for unit_id, everything in units.items():
            rng = random.Random(f"{seed}:{campaign.name}:{unit_id}")
            own = everything[:wanted]
            own_images = {image_id for _, image_id in own}
            gold: list[int] = []
            others = [u for u in units if u != unit_id]
            rng.shuffle(others)
            for other in others:
                if len(gold) == campaign.gold_per_hit:
                    break
                choices = [top for top, image in units[other] if image not in own_images]
                if choices:
                    gold.append(rng.choice(choices))
            hit = Hit.objects.create(campaign=campaign, unit_id=unit_id, unit_images=len(own))
            entries = [(top, False) for top, _ in own] + [(top, True) for top in gold]
            rng.shuffle(entries)
            slots += [
                HitImage(hit=hit, position=i, top_image_id=top, gold=is_gold)
                for i, (top, is_gold) in enumerate(entries)
            ]
        HitImage.objects.bulk_create(slots, batch_size=2000)

    # The page and its form ------------------------------------------------------------------------

    def form(self, hit: Hit, data: Mapping[str, Any] | None = None) -> HitAnswerForm:
        positions = list(HitImage.objects.filter(hit=hit).order_by("position").values_list("position", flat=True))
        return HitAnswerForm(data, positions=positions)

    def page_context(self, hit: Hit, form: HitAnswerForm) -> dict[str, Any]:  # type: ignore[override]  # its own form
        marked = form.marked() if form.is_bound else set()
        positions = form.positions()
        slots = [PageSlot(p, reverse("hit-image", args=[hit.key, p]), p in marked) for p in positions]
        chosen = form.data.get("category", "") if form.is_bound else ""
        categories = [
            {"value": value, "label": label, "examples": CATEGORY_EXAMPLES[Category(value)], "checked": value == chosen}
            for value, label in Category.choices
        ]
        return {
            "slots": slots,
            "categories": categories,
            "description_max": DESCRIPTION_MAX,
            "description": form.data.get("description", "") if form.is_bound else "",
            "marked_count": len(marked),
        }

    # Checking, scoring and storing an answer --------------------------------------------------------

    def gold_ok(self, hit: Hit, cleaned: Mapping[str, Any]) -> bool:
        _, gold = hit_positions(hit)
        return gold <= set(cleaned["mismatch"])

    def gold_warning(self, hit: Hit, form: HitAnswerForm) -> str:  # type: ignore[override]  # its own form
        shown = len(form.positions())
        marked = len(form.cleaned_data.get("mismatch", [])) if hasattr(form, "cleaned_data") else 0
        return f"{GOLD_WARNING} You have marked {marked} of the {shown} images."

    def answer_values(self, hit: Hit, cleaned: Mapping[str, Any]) -> dict[str, Any]:
        return self._values(hit, cleaned["description"], cleaned["category"], set(cleaned["mismatch"]))

    def _values(self, hit: Hit, description: str, category: str, marked: set[int]) -> dict[str, Any]:
        _, gold = hit_positions(hit)
        precision, gold_total, gold_marked = answer_score(gold=gold, marked=marked, unit_images=hit.unit_images)
        return {
            "description": description,
            "category": category,
            "marked": sorted(marked),
            "precision": precision,
            "gold_total": gold_total,
            "gold_marked": gold_marked,
        }

    def platform_fields(self, answer: Answer) -> dict[str, str]:
        return {
            "description": answer.description,
            "category": answer.category,
            "mismatch": ",".join(map(str, answer.marked)),
        }

    def parse_platform_fields(self, hit: Hit, fields: Mapping[str, str], positions: Sequence[int]) -> tuple:
        marks = [m for m in (fields.get("mismatch") or "").replace(" ", "").split(",") if m]
        data = {"description": fields.get("description", ""), "category": fields.get("category", ""), "mismatch": marks}
        form = HitAnswerForm(data, positions=list(positions))
        if not form.is_valid():
            raise ValueError("; ".join(f"{name}: {' '.join(map(str, errors))}" for name, errors in form.errors.items()))
        cleaned = form.cleaned_data
        return cleaned["description"], cleaned["category"], sorted(cleaned["mismatch"])

    def copy_of(self, answer: Answer) -> tuple:
        return answer.description, answer.category, sorted(answer.marked)

    def show_copy(self, copy: tuple) -> str:
        return f"{copy[0]!r}/{copy[1]}/{copy[2]}"

    def values_from_copy(self, hit: Hit, copy: tuple) -> dict[str, Any]:
        return self._values(hit, copy[0], copy[1], set(copy[2]))

    # Reviewing, aggregating, exporting ----------------------------------------------------------------

    def failed_rules(self, answer: Answer, min_seconds: float) -> list[str]:
        """The checks this answer fails, by name: gold images left unmarked, an empty or nonsense
        description, too little time spent."""
        failed = []
        if answer.gold_total and answer.gold_marked < answer.gold_total:
            failed.append("gold-failed")
        words = normalise(answer.description)
        if not words:
            failed.append("empty")
        elif (
            words in NONSENSE
            or _REPEATS.match(words.replace(" ", ""))
            or not re.search(r"[a-z]{2}", words)
            or (len(words) > 5 and not re.search(r"[aeiouy]", words))
        ):
            failed.append("nonsense")
        spent = seconds_spent(answer)
        if spent is not None and spent < min_seconds:
            failed.append("too-fast")
        shown = answer.hit.slots.count() if answer.hit is not None else 0
        if shown and len(answer.marked or []) >= MARKED_ALL * shown:
            failed.append("marked-all")  # every gold image passes, and nothing is said of the unit
        return failed

    def aggregate(self, unit_ids: list[int], settings: AggregationSettings) -> None:
        from annotator.task_kinds.describe_labels import labels_aggregate

        labels_aggregate(self.name, unit_ids, settings)

    def export_answer(self, answer: Answer) -> dict[str, Any]:
        return {
            "worker": answer.worker.external_id if answer.worker else None,
            "description": answer.description,
            "category": answer.category,
            "precision": None if answer.precision is None else round(answer.precision, 4),
        }

    def import_formats(self) -> list[ImportFormat]:
        from annotator.task_kinds.describe_imports import LongFormat, WideFormat

        return [WideFormat(), LongFormat()]

    def simulation(self, campaign: Campaign) -> Simulation:
        from annotator.task_kinds.describe_simulation import DescribeSimulation

        return DescribeSimulation(campaign)
