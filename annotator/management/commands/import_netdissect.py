"""`python manage.py import_netdissect TALLY.csv --network NAME --layer LAYER [--threshold 0.04] [--zero-based]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.management.arguments import bounded_float
from annotator.services.netdissect import TallyImportError, tally_import


class Command(BaseCommand):
    help = (
        "Import Network Dissection's automatic labels (tally.csv: unit,category,label,score,...) for one "
        "layer; the dashboard shows them beside the crowd's with their agreement."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--network", required=True, help="Network the labels belong to (created if new)")
        parser.add_argument("--layer", required=True, help="The dissected layer (pool5 for the reference file)")
        parser.add_argument(
            "--threshold", type=bounded_float(0, 1), default=0.04, help="IoU above which a unit is a detector"
        )
        parser.add_argument("--zero-based", action="store_true", help="Unit numbers start at 0 (NetDissect's at 1)")

    def handle(self, *args: object, **opts: Any) -> None:
        try:
            report = tally_import(
                path=opts["file"],
                network=opts["network"],
                layer=opts["layer"],
                threshold=opts["threshold"],
                one_based=not opts["zero_based"],
            )
        except TallyImportError as error:
            raise CommandError(str(error)) from error
        for line in report.errors:
            self.stderr.write(f"skipped {line}")
        self.stdout.write(
            f"{opts['file'].name}: {report.rows} rows, {report.created} labels added, "
            f"{report.updated} updated, {report.detectors} detectors (IoU > {opts['threshold']}), "
            f"{len(report.errors)} bad rows skipped."
        )
