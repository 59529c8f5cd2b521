"""`python manage.py export --format json|csv|tally|table [--network NAME] [--layer L] [--output FILE]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.services import export


class Command(BaseCommand):
    help = "Export units: network, layer, unit, RFs, top images and annotation results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["json", "csv", "tally", "table"], default="json")
        parser.add_argument("--network")
        parser.add_argument("--layer")
        parser.add_argument("--output", help="File to write (default: standard output)")

    def handle(self, *args: object, **opts: Any) -> None:
        records = export.unit_records(opts["network"], opts["layer"])
        if not records and (opts["network"] or opts["layer"]):
            raise CommandError(f"No units match network={opts['network']!r} layer={opts['layer']!r}")
        text = export.render(records, opts["format"])
        if opts["output"]:
            target = Path(opts["output"])
            if not target.parent.is_dir():
                raise CommandError(f"Cannot write {target}: the folder {target.parent} does not exist.")
            try:
                target.write_text(text)
            except OSError as error:
                raise CommandError(f"Cannot write {target}: {error.strerror or error}.") from None
            self.stderr.write(f"Wrote {len(records)} units to {opts['output']}")
        else:
            self.stdout.write(text, ending="")
