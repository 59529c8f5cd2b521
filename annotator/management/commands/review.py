"""`python manage.py review CAMPAIGN [--approve ID ...] [--reject ID ...] [--reject-rule RULE ...]
[--approve-passing] [--feedback TEXT] [--min-seconds 20] [--dry-run]`."""
from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.management.arguments import bounded_float
from annotator.models import Answer
from annotator.services import review
from annotator.services.campaigns import CampaignError, campaign_get
from annotator.services.review_rules import RULES, answers_review_by_rule


class Command(BaseCommand):
    help = ("Approve or reject a campaign's answers (on MTurk: its assignments), one by one by assignment id, or "
            f"by rule: reject those failing {', '.join(RULES)}; approve those passing every rule.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--approve", nargs="+", default=[], metavar="ASSIGNMENT")
        parser.add_argument("--reject", nargs="+", default=[], metavar="ASSIGNMENT")
        parser.add_argument("--reject-rule", nargs="+", default=[], choices=RULES)
        parser.add_argument("--approve-passing", action="store_true", help="Approve answers passing all rules")
        parser.add_argument("--feedback", default="", help="What the worker is told (required to reject)")
        parser.add_argument("--min-seconds", type=bounded_float(0, 86400), default=20.0,
                            help="Faster than this is 'too-fast'")
        parser.add_argument("--dry-run", action="store_true", help="List what would be done")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts) -> None:
        reviewer = review.Reviewer(opts["actor"])
        try:
            campaign = campaign_get(opts["name"])
            if (opts["reject"] or opts["reject_rule"]) and not opts["feedback"].strip():
                raise review.ReviewError("--feedback is required to reject: the worker sees it.")
            answers = {a.assignment.external_id: a for a in Answer.objects.filter(hit__campaign=campaign)
                       .exclude(assignment=None).select_related("assignment")}
            for ident in [*opts["approve"], *opts["reject"]]:
                if ident not in answers:
                    raise review.ReviewError(f"No answer of campaign {campaign.name!r} has assignment {ident!r}.")
            for ident in opts["approve"]:
                if not opts["dry_run"]:
                    review.answer_approve(answer_id=answers[ident].pk, reviewer=reviewer, feedback=opts["feedback"])
                self.stdout.write(f"approved {ident}")
            for ident in opts["reject"]:
                if not opts["dry_run"]:
                    review.answer_reject(answer_id=answers[ident].pk, reviewer=reviewer, feedback=opts["feedback"])
                self.stdout.write(f"rejected {ident}")
            if opts["reject_rule"] or opts["approve_passing"]:
                outcome = answers_review_by_rule(
                    campaign=campaign, reviewer=reviewer, reject_rules=opts["reject_rule"],
                    approve_passing=opts["approve_passing"], feedback=opts["feedback"],
                    min_seconds=opts["min_seconds"], dry_run=opts["dry_run"])
                for line in outcome.refused:
                    self.stderr.write(f"refused: {line}")
                verb = "would be" if opts["dry_run"] else "were"
                self.stdout.write(f"By rule: {len(outcome.rejected)} answers {verb} rejected, {len(outcome.approved)} "
                                  f"approved, {len(outcome.refused)} refused.")
        except (CampaignError, review.ReviewError) as error:
            raise CommandError(str(error)) from error
