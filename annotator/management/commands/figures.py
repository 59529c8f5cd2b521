"""`python manage.py figures --network NAME [--out DIR]`: the paper's figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.services.figures import figures_write


class Command(BaseCommand):
    help = (
        "Write the semantic-types-per-layer and object-detector figures as PNG and SVG. Detectors are the "
        "units `aggregate` stored as such (with UNIT_DETECTOR_THRESHOLD, or its --threshold)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--network", required=True)
        parser.add_argument("--out", type=Path, default=Path("var/figures"))

    def handle(self, *args: object, **opts: Any) -> None:
        if not selectors.layer_summaries(opts["network"]):
            raise CommandError(f"Network {opts['network']!r} has no answers yet; nothing to draw.")
        for path in figures_write(opts["network"], opts["out"]):
            self.stdout.write(str(path))
