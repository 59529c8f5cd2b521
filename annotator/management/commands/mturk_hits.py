"""`python manage.py mturk_hits CAMPAIGN expire|extend|delete [--hours N]`."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.services.campaigns import CampaignError, campaign_get
from annotator.services.crowds import mturk_client
from annotator.services.mturk_hits import hits_change
from mturk import client as mturk


class Command(BaseCommand):
    help = (
        "Expire a campaign's HITs on MTurk (no new workers; submitted work stays), extend them by --hours, or "
        "delete them (only reviewable HITs whose assignments are all approved or rejected)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("action", choices=["expire", "extend", "delete"])
        parser.add_argument("--hours", type=int, default=24, help="With extend: hours added")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts) -> None:
        try:
            campaign = campaign_get(opts["name"])
            if not campaign.on_mturk:
                raise CampaignError(f"Campaign {campaign.name!r} is not on Mechanical Turk.")
            report = hits_change(
                campaign=campaign,
                action=opts["action"],
                client=mturk_client(campaign),
                actor=opts["actor"],
                hours=opts["hours"],
            )
        except (CampaignError, mturk.MTurkError) as error:
            raise CommandError(str(error)) from error
        for line in report.refused:
            self.stderr.write(f"refused: {line}")
        self.stdout.write(f"{opts['action']}: {report.done} HITs, {len(report.refused)} refused.")
