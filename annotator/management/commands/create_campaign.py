"""`python manage.py create_campaign NAME --network NET --layers L1,L2 [--answers-per-unit 3]
[--images-per-hit 60] [--gold-per-hit 3] [--reward 0.10]`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.models import Campaign
from annotator.services.campaigns import CampaignError, CampaignSettings, campaign_create
from annotator.task_kinds import default_task, tasks


def money(text: str) -> Decimal:
    try:
        return Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation as error:
        raise ValueError(text) from error


class Command(BaseCommand):
    help = "Create an annotation campaign: one HIT per segmented unit of the given layers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--network", required=True)
        parser.add_argument("--layers", required=True, help="Comma-separated layer names, as given to dissect")
        parser.add_argument("--answers-per-unit", type=int, default=3)
        parser.add_argument("--images-per-hit", type=int, default=60, help="Image slots per HIT, gold included")
        parser.add_argument("--gold-per-hit", type=int, default=3)
        parser.add_argument("--reward", type=money, default=Decimal("0.10"), help="US dollars per assignment")
        parser.add_argument(
            "--assignment-minutes",
            type=int,
            default=30,
            help="An opened, unanswered local HIT returns to the pool after this time",
        )
        parser.add_argument("--instructions", default="", help="Shown above the standard instructions")
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
        settings = CampaignSettings(
            answers_per_unit=opts["answers_per_unit"],
            images_per_hit=opts["images_per_hit"],
            gold_per_hit=opts["gold_per_hit"],
            reward=opts["reward"],
            assignment_minutes=opts["assignment_minutes"],
            instructions=opts["instructions"],
            seed=opts["seed"],
            task=opts["task"],
        )
        layers = [name.strip() for name in opts["layers"].split(",") if name.strip()]
        existing = Campaign.objects.filter(name=opts["name"]).first()
        if existing and opts["exist_ok"]:
            if existing.network.name != opts["network"] or sorted(
                existing.layers.values_list("name", flat=True)
            ) != sorted(layers):
                raise CommandError(f"Campaign {existing.name!r} exists over other layers or another network.")
            self.stdout.write(f"Campaign {existing.name!r} exists already; kept as it is.")
            return
        try:
            campaign = campaign_create(name=opts["name"], network=opts["network"], layers=layers, settings=settings)
        except CampaignError as error:
            raise CommandError(str(error)) from error
        counts = selectors.campaign_counts(campaign)
        self.stdout.write(
            f"Created campaign {campaign.name!r}: {counts['hits']} HITs over {', '.join(layers)}, "
            f"{counts['needed']} answers wanted. Next: manage.py publish {campaign.name} --backend local"
        )
