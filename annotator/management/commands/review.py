"""`python manage.py review CAMPAIGN [--approve ID ...] [--reject ID ...] [--reject-rule RULE ...]
[--approve-passing] [--feedback TEXT] [--min-seconds 20] [--dry-run]`."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.crowds import crowds
from annotator.errors import ActionRefused
from annotator.management.arguments import bounded_float
from annotator.services import review
from annotator.services.campaigns import campaign_get
from annotator.services.crowd_actions import campaign_decide
from annotator.services.review_rules import RuleReview, all_rules, campaign_review_by_rule


class Command(BaseCommand):
    help = (
        "Approve or reject a campaign's answers on its crowd, one by one by the platform's id (an assignment, "
        "or a participant whose whole submission the platform decides), or by rule: reject those failing "
        f"{', '.join(all_rules())}; approve those passing every rule."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--approve",
            nargs="+",
            default=[],
            metavar="ID",
            help="Assignment ids, or participant ids where the platform decides whole submissions",
        )
        parser.add_argument("--reject", nargs="+", default=[], metavar="ID")
        categories = sorted({c for crowd in crowds().values() for c in crowd.rejection_categories()})
        parser.add_argument(
            "--category",
            default="",
            choices=["", *categories],
            help="The platform's rejection category for --reject, where it asks for one (by rule, it follows the rule)",
        )
        parser.add_argument("--reject-rule", nargs="+", default=[], choices=all_rules())
        parser.add_argument("--approve-passing", action="store_true", help="Approve answers passing all rules")
        parser.add_argument("--feedback", default="", help="What the worker is told (required to reject)")
        parser.add_argument(
            "--min-seconds", type=bounded_float(0, 86400), default=20.0, help="Faster than this is 'too-fast'"
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would be done")
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts: Any) -> None:
        reviewer = review.Reviewer(opts["actor"])
        try:
            campaign = campaign_get(opts["name"])
            if (opts["reject"] or opts["reject_rule"]) and not opts["feedback"].strip():
                raise review.ReviewError("--feedback is required to reject: the worker sees it.")
            for ident, approve in [*((i, True) for i in opts["approve"]), *((i, False) for i in opts["reject"])]:
                if opts["dry_run"]:
                    self.stdout.write(f"would {'approve' if approve else 'reject'} {ident}")
                    continue
                done = campaign_decide(
                    campaign=campaign,
                    ident=ident,
                    approve=approve,
                    reviewer=reviewer,
                    feedback=opts["feedback"],
                    category=opts["category"],
                )
                self.stdout.write(done)
            if opts["reject_rule"] or opts["approve_passing"]:
                self._by_rule(campaign, reviewer, opts)
        except ActionRefused as error:
            raise CommandError(str(error)) from error

    def _by_rule(self, campaign, reviewer: review.Reviewer, opts: dict) -> None:
        request = RuleReview(
            opts["reject_rule"], opts["approve_passing"], opts["feedback"], opts["min_seconds"], opts["dry_run"]
        )
        outcome = campaign_review_by_rule(campaign=campaign, reviewer=reviewer, request=request)
        for line in outcome.refused:
            self.stderr.write(f"refused: {line}")
        verb = "would be" if opts["dry_run"] else "were"
        self.stdout.write(
            f"By rule: {len(outcome.rejected)} {outcome.noun} {verb} rejected, {len(outcome.approved)} "
            f"approved, {len(outcome.refused)} refused."
        )
