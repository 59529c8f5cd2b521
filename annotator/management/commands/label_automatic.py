"""`python manage.py label_automatic NETWORK --probe DIR [--layers L1,L2] [--thresholds FILE.npy]`:
Network Dissection's IoU labels of a dissected network's layers on a Broden-format probe set whose
images it dissected. A dissection made with `--probe broden DIR` has them already (its activation
pass kept the maps); for another, the network runs once more over the probe set, chunk by chunk, and
an interrupted run resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotator.selectors.automatic import NONE_WITHHELD, auto_summary, netdissect_comparison
from annotator.services.automatic_labels import SOURCE, AutomaticLabelError
from annotator.services.tally_stages import dissection_label_automatic, probe_set, skipped_rows, tally_layers_of

STAGE_NAMES = {
    "probe_maps": "probe set's maps (the network)",
    "thresholds": "IoU thresholds",
    "tally": "IoU tally",
    "auto_labels": "automatic labels",
}


class Command(BaseCommand):
    help = (
        "Label a dissected network's units automatically (Network Dissection's IoU against a Broden probe set's "
        "per-pixel labels), beside the crowd's labels."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("network", help="The dissected network's name")
        parser.add_argument("--probe", required=True, help="The Broden-format probe set's folder")
        parser.add_argument("--layers", help="Comma-separated layers (default: every dissected layer)")
        parser.add_argument(
            "--thresholds", help="One layer's U activation levels (.npy) instead of the 0.995 quantiles"
        )
        parser.add_argument("--quiet", action="store_true", help="No progress bar")

    def handle(self, *args: object, **opts: Any) -> None:
        layers = [part.strip() for part in (opts["layers"] or "").split(",") if part.strip()] or None
        bars: list[tqdm] = []

        def progress(stage: str, total: int, done: int):
            if bars:
                bars.pop().close()
            if done >= total:  # a stage already done shows no bar
                return lambda _n: None
            unit = "chunk" if stage in ("probe_maps", "tally") else "step"
            bar = tqdm(total=total, initial=done, desc=STAGE_NAMES[stage], unit=unit, disable=opts["quiet"])
            bars.append(bar)
            return bar.update

        try:
            dissection = dissection_label_automatic(
                network=opts["network"],
                probe_dir=Path(opts["probe"]),
                layers=layers,
                thresholds=Path(opts["thresholds"]) if opts["thresholds"] else None,
                progress=progress,
            )
        except AutomaticLabelError as error:
            raise CommandError(str(error)) from error
        except KeyboardInterrupt:
            self.stderr.write("\nInterrupted. Finished steps are kept: run the same command again to go on.")
            raise SystemExit(130) from None
        finally:
            for bar in bars:
                bar.close()
        for layer in tally_layers_of(dissection):
            summary = auto_summary(layer, SOURCE, hidden=NONE_WITHHELD)
            if summary is None:
                continue
            comparison = netdissect_comparison(layer, source=SOURCE, hidden=NONE_WITHHELD)
            both, same = comparison.both, comparison.label_agree
            agreeing = f"{same} of {both} ({same / both:.0%})" if both else "none yet"
            kinds = ", ".join(f"{n} {c}" for c, n in summary.per_category) or "none"
            self.stdout.write(
                f"{opts['network']} / {layer.name}: {summary.detectors} of {summary.units} units are detectors "
                f"by IoU >= 0.04 ({kinds}), covering {summary.concepts} concepts; units that are "
                f"detectors for both the crowd and IoU with the same label: {agreeing}."
            )
        skipped = skipped_rows(dissection)
        if skipped:
            probe, _ = probe_set(dissection)
            first = probe.images[skipped[0]]
            self.stdout.write(
                f"{len(skipped)} image(s) of {probe.root / 'index.csv'} could not be read and are left out of the "
                f"tally, the first at row {first.row} ({first.image}); see `dissect --status --name {opts['network']}`."
            )
