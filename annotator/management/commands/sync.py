"""`python manage.py sync [CAMPAIGN ...] [--adopt]`: MTurk's HITs and assignments against ours."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.models import Campaign
from annotator.selectors.dashboard import campaign_money
from annotator.services.campaigns import CampaignError, campaign_get
from annotator.services.mturk_sync import campaign_sync
from mturk import client as mturk


class Command(BaseCommand):
    help = ("Mirror every HIT's state and every assignment's status (auto-approvals included) from Mechanical "
            "Turk, and report assignments only one side has or whose answers differ. Safe to run any time.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="Campaigns (default: every published MTurk campaign)")
        parser.add_argument("--adopt", action="store_true",
                            help="Store answers that MTurk has and we lack (parsed from MTurk's answer XML)")

    def handle(self, *args: object, **opts) -> None:
        try:
            campaigns = [campaign_get(name) for name in opts["names"]] or list(
                Campaign.objects.filter(backend__in=["sandbox", "production"], status="published").order_by("name"))
        except CampaignError as error:
            raise CommandError(str(error)) from error
        if not campaigns:
            self.stdout.write("No published Mechanical Turk campaign to sync.")
        for campaign in campaigns:
            if not campaign.on_mturk:
                raise CommandError(f"Campaign {campaign.name!r} is not on Mechanical Turk.")
            try:
                report = campaign_sync(campaign=campaign, client=mturk.connect(campaign.backend), adopt=opts["adopt"])
            except mturk.MTurkError as error:
                raise CommandError(f"{campaign.name}: {error}") from error
            for line in report.lines():
                self.stdout.write(f"{campaign.name}: {line}")
            counts, money = selectors.campaign_counts(campaign), campaign_money(campaign)
            rejected = campaign.hits.filter(answers__review="rejected").count()
            self.stdout.write(
                f"{campaign.name}: {counts['complete']}/{counts['hits']} HITs done, {counts['answers']}/"
                f"{counts['needed']} answers, {money.approved} approved, {rejected} rejected; ${money.spent} spent, "
                f"${money.owed} owed.")
