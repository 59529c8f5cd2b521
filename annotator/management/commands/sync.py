"""`python manage.py sync [CAMPAIGN ...] [--adopt]`: the crowd platforms' view of our campaigns."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.models import Campaign
from annotator.selectors.dashboard import campaign_money
from annotator.services.campaigns import CampaignError, campaign_get
from annotator.services.crowds import CrowdError, crowd_sync


class Command(BaseCommand):
    help = (
        "Mirror the platform's view: on Mechanical Turk every HIT's state and assignment's status (auto-approvals "
        "included), reporting assignments only one side has or whose answers differ; on Prolific the study's "
        "and every submission's state. Safe to run any time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="Campaigns (default: every published MTurk or Prolific campaign)")
        parser.add_argument(
            "--adopt",
            action="store_true",
            help="Store answers that MTurk has and we lack (parsed from MTurk's answer XML)",
        )

    def handle(self, *args: object, **opts) -> None:
        try:
            campaigns = [campaign_get(name) for name in opts["names"]] or list(
                Campaign.objects.filter(backend__in=["sandbox", "production", "prolific"], status="published").order_by(
                    "name"
                )
            )
        except CampaignError as error:
            raise CommandError(str(error)) from error
        if not campaigns:
            self.stdout.write("No published Mechanical Turk or Prolific campaign to sync.")
        for campaign in campaigns:
            try:
                lines = crowd_sync(campaign, adopt=opts["adopt"])
            except (CampaignError, CrowdError) as error:
                raise CommandError(f"{campaign.name}: {error}") from error
            for line in lines:
                self.stdout.write(f"{campaign.name}: {line}")
            counts, money = selectors.campaign_counts(campaign), campaign_money(campaign)
            rejected = campaign.hits.filter(answers__review="rejected").count()
            self.stdout.write(
                f"{campaign.name}: {counts['complete']}/{counts['hits']} HITs done, {counts['answers']}/"
                f"{counts['needed']} answers, {money.approved} approved, {rejected} rejected; ${money.spent} spent, "
                f"${money.owed} owed."
            )
