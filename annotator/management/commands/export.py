"""`python manage.py export --format json|csv|tally|table|netdissect [--network NAME] [--layer L]
[--output FILE]`; netdissect writes NetDissect-Lite's own tally.csv of one layer's automatic labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.services import export


class Command(BaseCommand):
    help = "Export units: network, layer, unit, RFs, top images and annotation results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["json", "csv", "tally", "table", "netdissect"], default="json")
        parser.add_argument("--network")
        parser.add_argument("--layer")
        parser.add_argument("--output", help="File to write (default: standard output)")
        parser.add_argument(
            "--all-answers",
            action="store_true",
            help="List every stored answer, each marked with whether it counts and why not (default: counted only)",
        )

    def handle(self, *args: object, **opts: Any) -> None:
        if opts["format"] == "netdissect":
            return self.netdissect(opts)
        records = export.unit_records(opts["network"], opts["layer"], all_answers=opts["all_answers"])
        if not records and (opts["network"] or opts["layer"]):
            raise CommandError(f"No units match network={opts['network']!r} layer={opts['layer']!r}")
        text = export.render(records, opts["format"])
        if opts["output"]:
            self.write(Path(opts["output"]), text.encode())
            self.stderr.write(f"Wrote {len(records)} units to {opts['output']}")
        else:
            self.stdout.write(text, ending="")

    def netdissect(self, opts: dict[str, Any]) -> None:
        from annotator.models import Layer
        from annotator.services.automatic_labels import AutomaticLabelError, tally_csv_of

        if not opts["network"] or not opts["layer"]:
            raise CommandError("--format netdissect writes one layer's tally: give --network and --layer.")
        layer = (
            Layer.objects.filter(network__name=opts["network"], name=opts["layer"]).select_related("network").first()
        )
        if layer is None:
            raise CommandError(f"No layer {opts['layer']!r} of a network named {opts['network']!r}.")
        try:
            data = tally_csv_of(layer)
        except AutomaticLabelError as error:
            raise CommandError(str(error)) from error
        if opts["output"]:
            self.write(Path(opts["output"]), data)
            self.stderr.write(
                f"Wrote NetDissect's tally.csv of {layer.network.name} / {layer.name} to {opts['output']}"
            )
        else:
            self.stdout.write(data.decode(), ending="")

    def write(self, target: Path, data: bytes) -> None:
        if not target.parent.is_dir():
            raise CommandError(f"Cannot write {target}: the folder {target.parent} does not exist.")
        try:
            target.write_bytes(data)
        except OSError as error:
            raise CommandError(f"Cannot write {target}: {error.strerror or error}.") from None
