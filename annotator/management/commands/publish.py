"""`python manage.py publish NAME --backend local`: make a campaign's HITs available."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from annotator import selectors
from annotator.models import Campaign
from annotator.services.campaigns import CampaignError, campaign_get, campaign_publish


class Command(BaseCommand):
    help = "Publish a campaign's HITs to local annotators (or, with the MTurk backend, to Mechanical Turk)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--backend", choices=Campaign.Backend.values, default=Campaign.Backend.LOCAL)

    def handle(self, *args: object, **opts) -> None:
        try:
            campaign = campaign_publish(campaign=campaign_get(opts["name"]), backend=opts["backend"])
        except CampaignError as error:
            raise CommandError(str(error)) from error
        counts = selectors.campaign_counts(campaign)
        self.stdout.write(f"Published {campaign.name!r} on {campaign.backend}: {counts['hits']} HITs, "
                          f"{counts['answers']} of {counts['needed']} answers in. "
                          f"Annotators start at {settings.SITE_URL}{reverse('annotate-home')}")
