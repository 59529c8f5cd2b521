"""`python manage.py bonus ASSIGNMENT --amount 0.50 --reason TEXT` (one answer, where the campaign's
platform pays bonuses per answer), or `python manage.py bonus --campaign NAME --participants ID [ID ...]
--amount 0.50 --reason TEXT` (several workers in one payment, where it pays in bulk)."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.errors import ActionRefused
from annotator.models import Answer
from annotator.services.campaigns import campaign_get
from annotator.services.payments import bonus_send, bonus_send_bulk
from annotator.services.review import Reviewer


class Command(BaseCommand):
    help = (
        "Pay a bonus through the campaign's platform, recorded with the reason: for one answer (by its assignment "
        "id), or to several workers of a campaign in one bulk payment (paid once for the same workers, amount "
        "and reason)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("assignment", nargs="?", default="", help="The answer's assignment id (the platform's)")
        parser.add_argument(
            "--campaign", default="", help="A campaign whose platform pays in bulk (with --participants)"
        )
        parser.add_argument("--participants", nargs="+", default=[], metavar="WORKER_ID", help="The platform's ids")
        parser.add_argument("--amount", required=True, help="Dollars, e.g. 0.50 (each)")
        parser.add_argument("--reason", required=True, help="Shown to the worker and kept with the bonus")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts: Any) -> None:
        reviewer = Reviewer(opts["actor"])
        try:
            if opts["campaign"]:
                bonuses = bonus_send_bulk(
                    campaign=campaign_get(opts["campaign"]),
                    amounts={p: opts["amount"] for p in opts["participants"]},
                    reason=opts["reason"],
                    reviewer=reviewer,
                )
                total = sum(b.amount for b in bonuses)
                self.stdout.write(f"Paid ${total} in bonuses to {len(bonuses)} participants in one bulk payment.")
                return
            if not opts["assignment"]:
                raise CommandError("Name an answer's assignment, or --campaign with --participants.")
            answer = Answer.objects.filter(assignment__external_id=opts["assignment"]).first()
            if answer is None:
                raise CommandError(f"No answer has assignment {opts['assignment']!r}.")
            bonus = bonus_send(answer_id=answer.pk, amount=opts["amount"], reason=opts["reason"], reviewer=reviewer)
        except ActionRefused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Paid ${bonus.amount} to {bonus.worker.external_id} ({bonus.token}).")
