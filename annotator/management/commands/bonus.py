"""`python manage.py bonus ASSIGNMENT --amount 0.50 --reason TEXT` (MTurk, one assignment), or
`python manage.py bonus --campaign NAME --participants PID [PID ...] --amount 0.50 --reason TEXT` (Prolific,
one bulk payment)."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.models import Answer
from annotator.services.campaigns import CampaignError, campaign_get
from annotator.services.crowds import CrowdError, prolific_client
from annotator.services.payments import bonus_send
from annotator.services.prolific_review import prolific_bonus
from annotator.services.review import Reviewer, ReviewError


class Command(BaseCommand):
    help = (
        "Pay a bonus, recorded with the reason: to a Mechanical Turk worker for one assignment, or to Prolific "
        "participants of a campaign's study in one bulk payment (paid once for the same participants, amount "
        "and reason)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("assignment", nargs="?", default="", help="MTurk's AssignmentId")
        parser.add_argument("--campaign", default="", help="A Prolific campaign (with --participants)")
        parser.add_argument("--participants", nargs="+", default=[], metavar="PROLIFIC_PID")
        parser.add_argument("--amount", required=True, help="Dollars, e.g. 0.50 (each)")
        parser.add_argument("--reason", required=True, help="Shown to the worker (MTurk) and kept with the bonus")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts) -> None:
        reviewer = Reviewer(opts["actor"])
        if opts["campaign"]:
            return self._prolific(opts, reviewer)
        if not opts["assignment"]:
            raise CommandError("Name an MTurk assignment, or --campaign with --participants for Prolific.")
        answer = Answer.objects.filter(assignment__external_id=opts["assignment"]).first()
        if answer is None:
            raise CommandError(f"No answer has assignment {opts['assignment']!r}.")
        try:
            bonus = bonus_send(answer_id=answer.pk, amount=opts["amount"], reason=opts["reason"], reviewer=reviewer)
        except ReviewError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Paid ${bonus.amount} to {bonus.answer.worker.external_id} ({bonus.token}).")

    def _prolific(self, opts: dict, reviewer: Reviewer) -> None:
        try:
            campaign = campaign_get(opts["campaign"])
            if not campaign.on_prolific:
                raise CampaignError(f"Campaign {campaign.name!r} is not on Prolific: MTurk bonuses are per assignment.")
            bonuses = prolific_bonus(
                campaign=campaign,
                amounts={p: opts["amount"] for p in opts["participants"]},
                reason=opts["reason"],
                reviewer=reviewer,
                client=prolific_client(),
            )
        except (CampaignError, CrowdError, ReviewError) as error:
            raise CommandError(str(error)) from error
        total = sum(b.amount for b in bonuses)
        self.stdout.write(f"Paid ${total} in bonuses to {len(bonuses)} participants in one bulk payment.")
