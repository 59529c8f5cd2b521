"""`python manage.py aggregate [--network NAME] [--layer L] [--threshold T] [--method majority|dawid-skene]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.management.arguments import bounded_float
from annotator.services.aggregation import METHODS, AggregationError, AggregationSettings, units_aggregate


class Command(BaseCommand):
    help = "Turn answers into unit labels (label, category, precision, agreement, status) and print a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--network")
        parser.add_argument("--layer")
        default = AggregationSettings.from_settings()
        parser.add_argument(
            "--threshold",
            type=bounded_float(0, 1),
            default=default.threshold,
            help=f"Mean precision that makes a detector (UNIT_DETECTOR_THRESHOLD: {default.threshold})",
        )
        parser.add_argument(
            "--method",
            choices=METHODS,
            default=default.method,
            help="How the category is chosen: plain majority or Dawid-Skene worker weighting "
            f"(AGGREGATION_METHOD: {default.method})",
        )

    def handle(self, *args: object, **opts: Any) -> None:
        settings = AggregationSettings(threshold=opts["threshold"], method=opts["method"])
        try:
            count = units_aggregate(network=opts["network"], layer=opts["layer"], settings=settings)
        except AggregationError as error:
            raise CommandError(str(error)) from error
        if not count:
            raise CommandError("No units with answers or HITs match; import or collect answers first.")
        self.stdout.write(f"Aggregated {count} units.")
        for row in selectors.layer_summaries(network=opts["network"], layer=opts["layer"]):
            shares = " ".join(f"{name} {share:.4f}" for name, share in row.type_shares.items())
            self.stdout.write(
                f"{row.network}/{row.layer}: {row.units} units, {row.answers} answers; types {shares}; "
                f"{row.detectors} detectors ({row.object_detectors} objects), "
                f"{row.pending} pending, {row.needs_review} to review; alpha {row.alpha_text}"
            )
