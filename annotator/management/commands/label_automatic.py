"""`python manage.py label_automatic NETWORK --probe DIR [--layers L1,L2]`: Network Dissection's IoU
labels of a dissected network's layers on a Broden-format probe set whose images it dissected."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotator.models import Layer
from annotator.selectors.automatic import netdissect_comparison
from annotator.services.automatic_labels import SOURCE, AutomaticLabelError, network_label_automatic


class Command(BaseCommand):
    help = (
        "Label a dissected network's units automatically (Network Dissection's IoU against a Broden probe set's "
        "per-pixel labels), beside the crowd's labels."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("network", help="The dissected network's name")
        parser.add_argument("--probe", required=True, help="The Broden-format probe set's folder")
        parser.add_argument("--layers", help="Comma-separated layers (default: every dissected layer)")
        parser.add_argument("--quiet", action="store_true", help="No progress bar")

    def handle(self, *args: object, **opts: Any) -> None:
        layers = [part.strip() for part in (opts["layers"] or "").split(",") if part.strip()] or None
        try:
            with tqdm(
                desc="automatic labels (2 passes, the network in the first)", unit="image", disable=opts["quiet"]
            ) as bar:
                results = network_label_automatic(
                    network=opts["network"], probe_dir=Path(opts["probe"]), layers=layers, progress=bar.update
                )
        except AutomaticLabelError as error:
            raise CommandError(str(error)) from error
        for result in results:
            layer = Layer.objects.select_related("network").get(network__name=opts["network"], name=result.layer)
            detectors = [r for r in result.results if r.detector]
            comparison = netdissect_comparison(layer, source=SOURCE)
            both, same = comparison.both, comparison.label_agree
            agreeing = f"{same} of {both} ({same / both:.0%})" if both else "none yet"
            per_category = Counter(r.category for r in detectors)
            kinds = ", ".join(f"{n} {c}" for c, n in per_category.most_common()) or "none"
            self.stdout.write(
                f"{opts['network']} / {result.layer}: {len(detectors)} of {len(result.results)} units are detectors "
                f"by IoU >= 0.04 ({kinds}), covering {len({r.label for r in detectors})} concepts; units that are "
                f"detectors for both the crowd and IoU with the same label: {agreeing}."
            )
