"""`python manage.py sync [CAMPAIGN ...] [--adopt]`: the crowd platforms' view of our campaigns."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.errors import ActionRefused
from annotator.services.campaigns import campaign_get
from annotator.services.crowd_actions import campaign_sync


class Command(BaseCommand):
    help = (
        "Mirror each campaign's platform: which answers it vouches for (they count from then on), the "
        "decisions made there (auto-approvals included), and what only one side has or where the two differ. "
        "Safe to run any time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="Campaigns (default: every published campaign on a platform)")
        parser.add_argument(
            "--adopt",
            action="store_true",
            help="Store answers that the platform has and we lack (read from its copy by the HIT form's rules)",
        )

    def handle(self, *args: object, **opts: Any) -> None:
        try:
            campaigns = [campaign_get(name) for name in opts["names"]] or selectors.campaigns_to_sync()
        except ActionRefused as error:
            raise CommandError(str(error)) from error
        if not campaigns:
            self.stdout.write("No published campaign on a platform to sync.")
        for campaign in campaigns:
            try:
                lines = campaign_sync(campaign=campaign, adopt=opts["adopt"])
            except ActionRefused as error:
                raise CommandError(f"{campaign.name}: {error}") from error
            for line in lines:
                self.stdout.write(f"{campaign.name}: {line}")
            self.stdout.write(f"{campaign.name}: {selectors.campaign_progress(campaign).summary()}")
