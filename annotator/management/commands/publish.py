"""`python manage.py publish NAME [--backend NAME] [--external-url https://HOST] [the crowd's options]`."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotator.crowds import backends, crowds, default_backend
from annotator.errors import ActionRefused
from annotator.services.campaigns import campaign_get
from annotator.services.crowd_actions import campaign_publish, publish_plan


class Command(BaseCommand):
    help = (
        "Publish a campaign's HITs on a crowd: local annotators on this site, or a platform (each with its own "
        "options, listed below). Prints what it costs first, and asks before spending money."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--backend",
            choices=list(backends()),
            default=default_backend().name,
            help=f"Where: {', '.join(f'{b.name} ({b.label})' for b in backends().values())}",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print the cost and the balance, create nothing")
        parser.add_argument("--yes", action="store_true", help="Do not ask before spending money")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}", help="Recorded as who did it")
        taken: set[str] = set()
        for crowd in crowds().values():  # each crowd's own options; one flag two crowds take is declared once
            for option in crowd.publish_options():
                if option.flags[0] not in taken:
                    taken.add(option.flags[0])
                    parser.add_argument(*option.flags, default=argparse.SUPPRESS, **option.kwargs)

    def handle(self, *args: object, **opts: Any) -> None:
        try:
            campaign = campaign_get(opts["name"])
            given = {k: v for k, v in opts.items() if k not in ("name", "backend", "dry_run", "yes", "actor")}
            plan = publish_plan(campaign=campaign, backend=opts["backend"], options=given)
            self.stdout.write(f"Publishing {campaign.name!r} on {plan.where}:\n{plan.text}")
            if opts["dry_run"]:
                self.stdout.write("Dry run: nothing was created.")
                return
            if not plan.enough:
                raise CommandError("The account balance does not cover this campaign; nothing was created.")
            if plan.spends_money and not opts["yes"]:
                self._confirm(plan.spends_money, plan.total)
            with tqdm(total=plan.steps, unit="HIT", desc="creating HITs", disable=plan.steps == 0) as bar:
                lines = campaign_publish(campaign=campaign, plan=plan, actor=opts["actor"], progress=bar.update)
        except ActionRefused as error:
            raise CommandError(str(error)) from error
        for line in lines:
            self.stdout.write(line)

    def _confirm(self, where: str, total: object) -> None:
        if not sys.stdin.isatty():
            raise CommandError(f"Publishing on {where} spends money: run it in a terminal to confirm, or pass --yes.")
        if input(f"Spend up to ${total:.2f}? Type yes to publish: ").strip().lower() != "yes":
            raise CommandError("Not confirmed; nothing was created.")
