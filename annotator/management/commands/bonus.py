"""`python manage.py bonus ASSIGNMENT --amount 0.50 --reason TEXT`."""
from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.models import Answer
from annotator.services.payments import bonus_send
from annotator.services.review import Reviewer, ReviewError


class Command(BaseCommand):
    help = "Pay a Mechanical Turk worker a bonus for one assignment (paid once, recorded with the reason)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("assignment", help="MTurk's AssignmentId")
        parser.add_argument("--amount", required=True, help="Dollars, e.g. 0.50")
        parser.add_argument("--reason", required=True, help="Shown to the worker")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts) -> None:
        answer = Answer.objects.filter(assignment__external_id=opts["assignment"]).first()
        if answer is None:
            raise CommandError(f"No answer has assignment {opts['assignment']!r}.")
        try:
            bonus = bonus_send(answer_id=answer.pk, amount=opts["amount"], reason=opts["reason"],
                               reviewer=Reviewer(opts["actor"]))
        except ReviewError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Paid ${bonus.amount} to {bonus.answer.worker.external_id} ({bonus.token}).")
