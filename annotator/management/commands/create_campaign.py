"""`python manage.py create_campaign NAME --network NET --layers L1,L2 [--answers-per-unit 3]
[--images-per-hit 60] [--gold-per-hit 3] [--reward 0.10] [--hide-automatic]`, or, for the presence task,
`create_campaign NAME --task presence --from CAMPAIGN [--proxy FILE.csv] [--images 180] [--with-top]
[--gold FILE.csv]`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.models import Campaign
from annotator.services.campaigns import CampaignError, CampaignSettings
from annotator.services.presence import UNITS
from annotator.task_kinds import default_task, task_named, tasks


def money(text: str) -> Decimal:
    """US dollars with cents: a finite number (NaN, infinity and 1e400 are refused by argparse)."""
    try:
        value = Decimal(text)
        if not value.is_finite():
            raise ValueError(text)
        return value.quantize(Decimal("0.01"))
    except InvalidOperation as error:
        raise ValueError(text) from error


class Command(BaseCommand):
    help = (
        "Create an annotation campaign: one HIT per segmented unit of the given layers (describe), or "
        "yes/no HITs asking whether an earlier campaign's labels hold beyond the top images (presence)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--network", help="The dissected network (describe)")
        parser.add_argument("--layers", help="Comma-separated layer names, as given to dissect (describe)")
        parser.add_argument("--answers-per-unit", type=int, default=3, help="Answers per HIT")
        parser.add_argument(
            "--images-per-hit", type=int, help="Image slots per HIT, gold included (describe 60, presence 15)"
        )
        parser.add_argument("--gold-per-hit", type=int, help="Gold images per HIT (describe 3, presence 2)")
        parser.add_argument(
            "--units",
            nargs="+",
            metavar="WHICH",
            help="Which units: all, iou-below X or disagree (describe, by the automatic labels; default all); "
            f"{' or '.join(UNITS)} of --from (presence; default detectors)",
        )
        presence = parser.add_argument_group("the presence task")
        presence.add_argument("--from", dest="source", help="The campaign whose aggregated labels are asked about")
        presence.add_argument("--images", type=int, default=180, help="Probe images drawn per unit")
        presence.add_argument("--with-top", action="store_true", help="Ask about each unit's top images too")

        presence.add_argument("--proxy", help="CSV image,label,score in [0, 1] guiding the draws and the prior")
        presence.add_argument("--gold", help="CSV image,label,present: the gold images (default: the demo world's)")
        presence.add_argument("--score", choices=("max", "mean"), default="max", help="The unit's probe score")
        parser.add_argument("--reward", type=money, default=Decimal("0.10"), help="US dollars per assignment")
        parser.add_argument(
            "--assignment-minutes",
            type=int,
            default=30,
            help="An opened, unanswered local HIT returns to the pool after this time",
        )
        parser.add_argument("--instructions", default="", help="Shown above the standard instructions")
        parser.add_argument(
            "--hide-automatic",
            action="store_true",
            help="A blind review: the dashboard withholds its units' automatic labels until the campaign "
            "shows them (its page) or finishes. Annotators never see them, with or without this",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of gold choice and image order")
        parser.add_argument(
            "--task", choices=list(tasks()), default=default_task().name, help="The kind of question its HITs ask"
        )
        parser.add_argument(
            "--exist-ok",
            action="store_true",
            help="Keep a campaign of this name over the same network and layers instead of failing",
        )

    def handle(self, *args: object, **opts: Any) -> None:
        task = task_named(opts["task"])
        settings = CampaignSettings(
            answers_per_unit=opts["answers_per_unit"],
            images_per_hit=task.images_per_hit if opts["images_per_hit"] is None else opts["images_per_hit"],
            gold_per_hit=task.gold_per_hit if opts["gold_per_hit"] is None else opts["gold_per_hit"],
            reward=opts["reward"],
            assignment_minutes=opts["assignment_minutes"],
            instructions=opts["instructions"],
            seed=opts["seed"],
            task=opts["task"],
            units=tuple(opts["units"] or ("all",)),  # the describe task's; the presence task reads its own
            reviewers_see_automatic=not opts["hide_automatic"],
        )
        existing = Campaign.objects.filter(name=opts["name"]).first()
        if existing and opts["exist_ok"]:
            self._keep(existing, task.name, opts)
            return
        try:
            campaign = task.create_campaign(opts["name"], settings, opts)
        except CampaignError as error:
            raise CommandError(str(error)) from error
        counts = selectors.campaign_counts(campaign)
        layers = ", ".join(campaign.layers.order_by("name").values_list("name", flat=True))
        self.stdout.write(
            f"Created campaign {campaign.name!r} ({task.name}): {counts['hits']} HITs over {layers}, "
            f"{counts['needed']} answers wanted. Next: manage.py publish {campaign.name} --backend local"
        )

    def _keep(self, existing: Campaign, task: str, opts: dict[str, Any]) -> None:
        """--exist-ok: a campaign of this name asking the same of the same units is kept as it is."""
        layers = sorted(name.strip() for name in (opts["layers"] or "").split(",") if name.strip())
        same = existing.task == task and (
            existing.task_settings.get("from") == opts["source"]
            if opts["source"]
            else existing.network.name == opts["network"]
            and sorted(existing.layers.values_list("name", flat=True)) == layers
        )
        if not same:
            raise CommandError(f"Campaign {existing.name!r} exists over other layers, units or another task.")
        self.stdout.write(f"Campaign {existing.name!r} exists already; kept as it is.")
        if existing.reviewers_see_automatic == opts["hide_automatic"]:
            now = "see" if existing.reviewers_see_automatic else "do not see"
            self.stdout.write(f"Its reviewers {now} the automatic labels: its dashboard page changes that.")
