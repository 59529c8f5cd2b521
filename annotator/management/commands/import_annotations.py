"""`python manage.py import_annotations FILE --network NAME [--no-aggregate]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.services.aggregation import units_aggregate
from annotator.services.imports import AnnotationImportError, annotations_import


class Command(BaseCommand):
    help = (
        "Import answers made elsewhere: the authors' wide CSV (net,layer,unit,desc1,cat1,prec1,...) or a "
        "long one (network,layer,unit,worker,description,category,precision). Then aggregate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--network", required=True, help="Network the answers belong to (created if new)")
        parser.add_argument("--no-aggregate", action="store_true", help="Only store the answers")

    def handle(self, *args: object, **opts: Any) -> None:
        try:
            report = annotations_import(path=opts["file"], network=opts["network"])
        except AnnotationImportError as error:
            raise CommandError(str(error)) from error
        for line in report.errors:
            self.stderr.write(f"skipped {line}")
        self.stdout.write(
            f"{opts['file'].name}: {report.rows} rows, {report.answers_created} answers added, "
            f"{report.answers_present} already present, {report.units_created} new units, "
            f"{len(report.errors)} bad rows skipped."
        )
        if not opts["no_aggregate"]:
            count = units_aggregate(network=opts["network"])
            self.stdout.write(f"Aggregated {count} units of {opts['network']}.")
