"""`python manage.py hits CAMPAIGN expire|extend|delete [--hours N]`: the HITs' lifecycle on the
campaign's platform (where it has one)."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.crowds import crowds
from annotator.errors import ActionRefused
from annotator.services.campaigns import campaign_get
from annotator.services.crowd_actions import campaign_hits_change


class Command(BaseCommand):
    help = (
        "Expire a campaign's HITs on its platform (no new workers; submitted work stays), extend them by --hours, "
        "or delete them (only reviewable HITs whose assignments are all approved or rejected)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        actions = sorted({action for crowd in crowds().values() for action in crowd.lifecycle})
        parser.add_argument("action", choices=actions)
        parser.add_argument("--hours", type=int, default=24, help="With extend: hours added")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts: Any) -> None:
        try:
            campaign = campaign_get(opts["name"])
            done, refused = campaign_hits_change(
                campaign=campaign, action=opts["action"], actor=opts["actor"], hours=opts["hours"]
            )
        except ActionRefused as error:
            raise CommandError(str(error)) from error
        for line in refused:
            self.stderr.write(f"refused: {line}")
        self.stdout.write(f"{opts['action']}: {done} HITs, {len(refused)} refused.")
