"""What a kind of question is to the rest of the tool: the `Task` interface a HIT's page, the answer
service, the crowds' syncs, the simulated crowd, imports, exports and the dashboard go through.

A Task knows its form and its rules, its page, how an answer is checked against the HIT's gold
images and scored, what an answer stores, how a platform's copy of an answer reads, and how its
answers aggregate into unit results. The paper's three-task HIT is the first (`describe`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from django import forms

    from annotator.models import Answer, Campaign, Hit
    from annotator.services.aggregation import AggregationSettings
    from annotator.services.campaigns import CampaignSettings


@dataclass(frozen=True)
class PageSlot:
    """One image of a HIT's page, by slot position (nothing in the page tells unit from gold images)."""

    position: int
    url: str
    marked: bool


class ImportFormat:
    """A file format of a task's answers made elsewhere (a CSV with these columns). The rows' layer,
    unit and worker columns are the import service's; what an answer holds is the format's."""

    name: ClassVar[str]  # in messages: "the wide format"
    columns: ClassVar[tuple[str, ...]]  # the header must hold these
    per_worker: ClassVar[bool]  # a row names its worker (a `worker` column)

    def matches(self, header: list[str]) -> bool:
        return all(name in header for name in self.columns)

    def answers(self, header: list[str], row: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
        """(column key, Answer field values) of each answer in the row; ValueError says what is wrong."""
        raise NotImplementedError


class Simulation:
    """A simulated crowd's view of one campaign: what each HIT's answer should be, and how near the
    aggregated results came (the demo world's truth)."""

    def fields(self, worker: Any, hit_id: int, attempt: int) -> list[tuple[str, str]]:
        """The form fields a simulated worker posts for a HIT (`attempt` > 0 after a gold warning)."""
        raise NotImplementedError

    def scores(self, campaign: Campaign) -> dict[str, dict[str, float]]:
        raise NotImplementedError

    def summary(self, scores: dict[str, dict[str, Any]]) -> list[str]:
        """The scores as lines for the command line."""
        return [f"  {name}: {values}" for name, values in scores.items()]


class Task:
    """One kind of question a HIT asks."""

    name: ClassVar[str]  # Campaign.task
    label: ClassVar[str]
    template: ClassVar[str]  # the HIT page
    answer_rows_template: ClassVar[str]  # the unit page's rows of this task's answers
    rules: ClassVar[tuple[str, ...]] = ()  # review rules by which its answers can be decided

    def units_of(self, hit: Hit) -> list[int]:
        """The units whose results a HIT's answers feed (the describe task: its one unit)."""
        return [] if hit.unit_id is None else [hit.unit_id]

    images_per_hit: ClassVar[int] = 60  # a new campaign's defaults
    gold_per_hit: ClassVar[int] = 3

    def create_campaign(self, name: str, settings: CampaignSettings, options: Mapping[str, Any]) -> Campaign:
        """A new campaign of this task from `create_campaign`'s options (the describe task: the
        segmented units of --network's --layers)."""
        from annotator.services.campaigns import CampaignError, campaign_create

        layers = [part.strip() for part in (options.get("layers") or "").split(",") if part.strip()]
        if not options.get("network") or not layers:
            raise CampaignError(f"The {self.name} task needs --network and --layers.")
        return campaign_create(name=name, network=options["network"], layers=layers, settings=settings)

    def build_hits(self, campaign: Campaign, units: dict[int, list[tuple[int, int]]], *, seed: int) -> None:
        """Create the campaign's HITs and their image slots from each unit's (top image, image) ids."""
        raise NotImplementedError

    def form(self, hit: Hit, data: Mapping[str, Any] | None = None) -> forms.Form:
        """The HIT's form, bound to `data` when given; its validation is the task's every rule."""
        raise NotImplementedError

    def page_context(self, hit: Hit, form: forms.Form) -> dict[str, Any]:
        """What the task's template shows besides the crowd's part of the page."""
        raise NotImplementedError

    def gold_ok(self, hit: Hit, cleaned: Mapping[str, Any]) -> bool:
        """Whether a valid answer handled the HIT's gold images as a careful worker would; if not, the
        worker is warned and asked to look again (up to `answers.GOLD_TRIES`)."""
        return True

    def gold_warning(self, hit: Hit, form: forms.Form) -> str:
        """What the worker is told when `gold_ok` said no."""
        return "Some images were not judged as the instructions ask. Look at every image again, then submit."

    def answer_values(self, hit: Hit, cleaned: Mapping[str, Any]) -> dict[str, Any]:
        """What an answer stores (Answer's fields), scored against the HIT's gold images."""
        raise NotImplementedError

    def platform_fields(self, answer: Answer) -> dict[str, str]:
        """The answer as the page hands it to a platform that keeps its own copy (an externalSubmit)."""
        raise NotImplementedError

    def parse_platform_fields(self, hit: Hit, fields: Mapping[str, str], positions: Sequence[int]) -> tuple:
        """A platform's copy read back by the form's rules: the same tuple `copy_of` gives (ValueError
        says what is wrong)."""
        raise NotImplementedError

    def copy_of(self, answer: Answer) -> tuple:
        """The stored answer in the form `parse_platform_fields` gives, to compare the two."""
        raise NotImplementedError

    def show_copy(self, copy: tuple) -> str:
        return "/".join(map(str, copy))

    def values_from_copy(self, hit: Hit, copy: tuple) -> dict[str, Any]:
        """What an answer adopted from a platform's copy stores (the platform had it, we did not)."""
        raise NotImplementedError

    def aggregate(self, unit_ids: list[int], settings: AggregationSettings) -> None:
        """Recompute the units' results from their counted answers of this task."""
        raise NotImplementedError

    def failed_rules(self, answer: Answer, min_seconds: float) -> list[str]:
        return []

    def export_answer(self, answer: Answer) -> dict[str, Any]:
        raise NotImplementedError

    def import_formats(self) -> list[ImportFormat]:
        """The file formats its answers made elsewhere come in (`import_annotations`)."""
        return []

    def simulation(self, campaign: Campaign) -> Simulation:
        raise NotImplementedError(f"The {self.name} task has no simulated crowd.")
