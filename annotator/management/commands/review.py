"""`python manage.py review CAMPAIGN [--approve ID ...] [--reject ID ...] [--reject-rule RULE ...]
[--approve-passing] [--feedback TEXT] [--min-seconds 20] [--dry-run]`."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.management.arguments import bounded_float
from annotator.models import Answer
from annotator.services import review
from annotator.services.campaigns import CampaignError, campaign_get
from annotator.services.crowds import CrowdError, crowd_review_by_rule, prolific_client
from annotator.services.prolific_review import prolific_decide
from annotator.services.review_rules import RULES
from prolific.client import REJECTION_CATEGORIES, ProlificError


class Command(BaseCommand):
    help = (
        "Approve or reject a campaign's answers (on MTurk: its assignments; on Prolific: its participants' "
        "submissions), one by one by assignment or participant id, or by rule: reject those failing "
        f"{', '.join(RULES)}; approve those passing every rule."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--approve", nargs="+", default=[], metavar="ID", help="MTurk assignment ids, or Prolific participant ids"
        )
        parser.add_argument("--reject", nargs="+", default=[], metavar="ID")
        parser.add_argument(
            "--category",
            default="OTHER",
            choices=REJECTION_CATEGORIES,
            help="Prolific's rejection category for --reject (by rule, it follows the rule)",
        )
        parser.add_argument("--reject-rule", nargs="+", default=[], choices=RULES)
        parser.add_argument("--approve-passing", action="store_true", help="Approve answers passing all rules")
        parser.add_argument("--feedback", default="", help="What the worker is told (required to reject)")
        parser.add_argument(
            "--min-seconds", type=bounded_float(0, 86400), default=20.0, help="Faster than this is 'too-fast'"
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would be done")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts) -> None:
        reviewer = review.Reviewer(opts["actor"])
        try:
            campaign = campaign_get(opts["name"])
            if (opts["reject"] or opts["reject_rule"]) and not opts["feedback"].strip():
                raise review.ReviewError("--feedback is required to reject: the worker sees it.")
            if campaign.on_prolific:
                return self._prolific(campaign, reviewer, opts)
            answers = {
                a.assignment.external_id: a
                for a in Answer.objects.filter(hit__campaign=campaign)
                .exclude(assignment=None)
                .select_related("assignment")
            }
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
            self._by_rule(campaign, reviewer, opts)
        except (CampaignError, CrowdError, review.ReviewError) as error:
            raise CommandError(str(error)) from error

    def _prolific(self, campaign, reviewer: review.Reviewer, opts: dict) -> None:
        """Prolific decides whole submissions: by participant id, or by rule (see prolific_review)."""
        client = prolific_client()
        for ident, approve in [*((i, True) for i in opts["approve"]), *((i, False) for i in opts["reject"])]:
            if opts["dry_run"]:
                self.stdout.write(f"would {'approve' if approve else 'reject'} {ident}")
                continue
            try:
                prolific_decide(
                    campaign=campaign,
                    participant_id=ident,
                    approve=approve,
                    reviewer=reviewer,
                    client=client,
                    feedback=opts["feedback"],
                    category=opts["category"],
                )
            except ProlificError as error:
                raise review.ReviewError(str(error)) from error
            self.stdout.write(f"{'approved' if approve else 'rejected'} {ident}")
        self._by_rule(campaign, reviewer, opts)

    def _by_rule(self, campaign, reviewer: review.Reviewer, opts: dict) -> None:
        if not (opts["reject_rule"] or opts["approve_passing"]):
            return
        outcome = crowd_review_by_rule(
            campaign=campaign,
            reviewer=reviewer,
            reject_rules=opts["reject_rule"],
            approve_passing=opts["approve_passing"],
            feedback=opts["feedback"],
            min_seconds=opts["min_seconds"],
            dry_run=opts["dry_run"],
        )
        for line in outcome.refused:
            self.stderr.write(f"refused: {line}")
        verb = "would be" if opts["dry_run"] else "were"
        what = "participants' submissions" if campaign.on_prolific else "answers"
        self.stdout.write(
            f"By rule: {len(outcome.rejected)} {what} {verb} rejected, {len(outcome.approved)} "
            f"approved, {len(outcome.refused)} refused."
        )
