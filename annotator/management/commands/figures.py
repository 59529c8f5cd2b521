"""`python manage.py figures --network NAME [--out DIR] [--threshold 0.75]`: the paper's figures."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.services.figures import figures_write


class Command(BaseCommand):
    help = "Write the semantic-types-per-layer and object-detector figures as PNG and SVG."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--network", required=True)
        parser.add_argument("--out", type=Path, default=Path("var/figures"))
        parser.add_argument("--threshold", type=float, default=0.75)

    def handle(self, *args: object, **opts) -> None:
        if not selectors.layer_summaries(opts["network"], opts["threshold"]):
            raise CommandError(f"Network {opts['network']!r} has no answers yet; nothing to draw.")
        for path in figures_write(opts["network"], opts["out"], opts["threshold"]):
            self.stdout.write(str(path))
