"""`python manage.py dissect --network NET --layers L1,L2 --images DIR ...`: top images, receptive
fields and segmentations. Re-running the same command resumes; a finished dissection does nothing."""

from __future__ import annotations

import argparse
import math
import signal
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator import selectors
from annotator.services import dissection as service
from annotator.services.dissection_setup import full_pass_reason


def _floats(text: str) -> list[float]:
    """Three finite numbers R,G,B; argparse reports the error with the option's name."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected three numbers R,G,B, got {text!r}")
    return values


LIMITS = {  # option: (least, most), checked before anything is created
    "top_k": (1, 10_000),
    "occluder_size": (1, 1_024),
    "occluder_stride": (1, 1_024),
    "batch_size": (1, 4_096),
    "chunk_size": (1, 1_000_000),
    "input_size": (16, 4_096),
    "seed": (0, 2**32 - 1),
}


def check_numbers(opts: dict[str, Any]) -> None:
    """Numbers a dissection cannot run with are refused by name, before any record is written."""
    for name, (low, high) in LIMITS.items():
        value = opts.get(name)
        if value is not None and not low <= value <= high:
            raise CommandError(f"--{name.replace('_', '-')} must be between {low} and {high:,}, not {value}.")
    if opts.get("rf_images") is not None and not 1 <= opts["rf_images"] <= opts["top_k"]:
        raise CommandError(f"--rf-images must be between 1 and --top-k ({opts['top_k']}), not {opts['rf_images']}.")
    if opts.get("std") is not None and min(opts["std"]) <= 0:
        raise CommandError(f"--std must be three positive numbers (each channel is divided by it), not {opts['std']}.")
    if opts.get("mean") is not None and not all(-1 <= v <= 2 for v in opts["mean"]):
        raise CommandError(f"--mean is in [0, 1] pixel units (R,G,B), not {opts['mean']}.")


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Dissect layers of a network over an image folder (METHOD stages 1-4)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--network", help="demo, alexnet, alexnet-caffe, or package.module:factory")
        parser.add_argument("--layers", help="Comma-separated: aliases (pool5) or module names (features.12)")
        parser.add_argument("--images", help="Folder searched recursively for images")
        parser.add_argument("--weights", default="", help="state_dict or {'state_dict': ...} checkpoint")
        parser.add_argument("--name", help="Name of this dissection's network record (default: --network)")
        parser.add_argument("--top-k", type=int, default=60)
        parser.add_argument("--input-size", type=int)
        parser.add_argument("--mean", type=_floats, help="R,G,B in [0, 1] pixel units")
        parser.add_argument("--std", type=_floats, help="R,G,B in [0, 1] pixel units")
        parser.add_argument("--occluder-size", type=int, default=11)
        parser.add_argument("--occluder-stride", type=int, default=3)
        parser.add_argument("--rf-images", type=int, help="Top images per unit used for its RF (default: all)")
        parser.add_argument(
            "--occluder-at-centre",
            action="store_true",
            help="Put each discrepancy at the occluder's centre instead of spreading it",
        )
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--chunk-size", type=int, default=500, help="Images per resumable activation step")
        parser.add_argument(
            "--device", default="cpu", help="cpu, cuda or cuda:N; a worker's DISSECT_DEVICE overrides it"
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the random occluders")
        parser.add_argument("--queue", action="store_true", help="Enqueue Celery tasks instead of running here")
        parser.add_argument("--status", action="store_true", help="Show the progress of dissection --name")
        parser.add_argument("--quiet", action="store_true", help="No progress bars")
        automatic = parser.add_argument_group("automatic labels (Network Dissection's IoU on a Broden probe set)")
        automatic.add_argument(
            "--probe", nargs=2, metavar=("broden", "DIR"), help="The probe set: its layout (broden) and folder"
        )
        automatic.add_argument(
            "--features", help="N x U x h x w activations (.npy, rows in index.csv's order) to label without a network"
        )
        automatic.add_argument("--thresholds", help="U activation levels (.npy) instead of the 0.995 quantiles")

    def handle(self, *args: object, **opts: Any) -> None:
        if opts["status"]:
            return self.show_status(opts["name"] or opts["network"])
        if opts["features"]:
            return self.features(opts)
        probe_dir, listed = self.probe_images(opts) if opts["probe"] else (None, None)
        thresholds = self.thresholds_file(opts)
        for required in ("network", "layers", "images"):
            if not opts[required]:
                raise CommandError(f"--{required} is required")
        for positive in ("top_k", "occluder_size", "occluder_stride", "batch_size", "chunk_size"):
            if opts[positive] < 1:
                raise CommandError(f"--{positive.replace('_', '-')} must be at least 1")
        check_numbers(opts)
        if not [s for s in opts["layers"].split(",") if s.strip()]:
            raise CommandError(
                f"--layers {opts['layers']!r} names no layer: give aliases or module names, "
                "comma-separated (--layers conv5 or --layers layer3,layer4)."
            )
        settings = service.DissectionSettings(
            network=opts["network"],
            layers=[s.strip() for s in opts["layers"].split(",") if s.strip()],
            images=opts["images"],
            weights=opts["weights"],
            top_k=opts["top_k"],
            input_size=opts["input_size"],
            mean=opts["mean"],
            std=opts["std"],
            occluder_size=opts["occluder_size"],
            occluder_stride=opts["occluder_stride"],
            rf_images=opts["rf_images"],
            spread=not opts["occluder_at_centre"],
            seed=opts["seed"],
            batch_size=opts["batch_size"],
            device=opts["device"],
            chunk_size=opts["chunk_size"],
            image_list=listed,
        )
        try:
            dissection = service.dissection_start(settings, opts["name"], queued=opts["queue"])
        except service.DissectionError as exc:
            raise CommandError(str(exc)) from exc
        name = dissection.network.name
        if probe_dir is not None:  # before the activation pass, so that it keeps the maps the tally reads
            from annotator.services.automatic_labels import AutomaticLabelError
            from annotator.services.tally_stages import probe_attach

            try:
                probe_attach(dissection, probe_dir, thresholds=thresholds)
            except AutomaticLabelError as exc:
                raise CommandError(str(exc)) from exc
        if opts["queue"]:
            from annotator.tasks import enqueue_pending

            count = enqueue_pending(dissection.pk)
            self.stdout.write(
                f"Queued {count} step(s) of stage '{dissection.stage}' for {name}. "
                f"Follow with: python manage.py dissect --status --name {name}"
            )
            return
        if dissection.stage == dissection.Stage.DONE:
            self.stdout.write(f"Dissection {name} is already complete; nothing to do.")
            self.report(dissection)
            if probe_dir is not None:
                self.automatic(name, probe_dir, thresholds, opts["quiet"])
            return None
        if dissection.stage not in (dissection.Stage.SEGMENTATION, dissection.Stage.DONE):
            reason = full_pass_reason(dissection)
            if reason:
                self.stdout.write(
                    f"Occlusion sweeps will run as full forward passes of every occluded copy, "
                    f"not the cone sweep: {reason}."
                )
        # `kill` (SIGTERM) stops like Ctrl-C: the step in progress is dropped, finished steps are kept.
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            dissection = service.dissection_run(dissection.pk, progress=not opts["quiet"])
        except KeyboardInterrupt:
            self.stderr.write(f"\nInterrupted. Finished work is kept: run the same command again to continue {name}.")
            raise SystemExit(130) from None
        except service.DissectionError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.report(dissection)
        if probe_dir is not None:  # and the automatic labels on the probe set it read
            self.automatic(name, probe_dir, thresholds, opts["quiet"])

    def report(self, dissection: service.Dissection) -> None:
        bad = list(selectors.unreadable_images(dissection).values_list("path", "error"))
        total = dissection.image_count
        self.stdout.write(f"{dissection.network.name}: {total - len(bad)} images read, {len(bad)} skipped.")
        for path, error in bad:
            self.stdout.write(f"  skipped {path}: {error}")
        for layer in dissection.network.layers.order_by("order"):
            self.stdout.write(
                f"  {layer.name} ({layer.module_name}): {layer.num_units} units, "
                f"theoretical RF {layer.rf_theoretical_px} px"
            )
        self.stdout.write("Export with: python manage.py export --format json --network " + dissection.network.name)

    def automatic(self, name: str, probe_dir: Path, thresholds: Path | None, quiet: bool) -> None:
        given = ["--thresholds", str(thresholds)] if thresholds else []
        quieter = ["--quiet"] if quiet else []
        call_command("label_automatic", name, "--probe", str(probe_dir), *given, *quieter, stdout=self.stdout)

    def thresholds_file(self, opts: dict[str, Any]) -> Path | None:
        """`--thresholds FILE.npy` beside a network: the probe set's labels take them instead of the
        0.995 quantiles (their count is checked against the layer once the network is known)."""
        if not opts["thresholds"]:
            return None
        if not opts["probe"]:
            raise CommandError("--thresholds gives the IoU tally's levels: it needs --probe broden DIR.")
        path = Path(opts["thresholds"])
        if not path.is_file():
            raise CommandError(f"--thresholds {path}: no such file.")
        return path

    def probe_images(self, opts: dict[str, Any]) -> tuple[Path, list[str]]:
        """`--probe broden DIR` with a network: the images are the probe set's (DIR/images, only those
        index.csv lists), and the automatic labels follow the dissection."""
        from annotator.services.automatic_labels import AutomaticLabelError, probe_read

        kind, folder = opts["probe"]
        if kind != "broden":
            raise CommandError(f"--probe {kind!r}: the probe set layout read is broden.")
        probe_dir = Path(folder)
        try:
            listed = sorted({image.image for image in probe_read(probe_dir).images})
        except AutomaticLabelError as error:
            raise CommandError(str(error)) from error
        images = str((probe_dir / "images").resolve())
        if opts["images"] and str(Path(opts["images"]).resolve()) != images:
            raise CommandError(f"--images {opts['images']} is not the probe set's {images}: give one or the other.")
        opts["images"] = images
        return probe_dir, listed

    def features(self, opts: dict[str, Any]) -> None:
        """`dissect --features FILE.npy --probe broden DIR --name NAME [--layers L] [--thresholds FILE.npy]`."""
        from tqdm import tqdm

        from annotator.services.automatic_labels import AutomaticLabelError, features_dissect

        if not opts["probe"] or opts["probe"][0] != "broden":
            raise CommandError("--features needs --probe broden DIR: the probe set the activations were computed on.")
        if not opts["name"]:
            raise CommandError("--features needs --name: the name its network record gets.")
        layer = (opts["layers"] or "features").strip()
        passes = 1 if opts["thresholds"] else 2
        try:
            with tqdm(desc="automatic labels", unit="image", disable=opts["quiet"]) as bar:
                result = features_dissect(
                    features=Path(opts["features"]),
                    probe_dir=Path(opts["probe"][1]),
                    name=opts["name"],
                    layer=layer,
                    thresholds=Path(opts["thresholds"]) if opts["thresholds"] else None,
                    progress=bar.update,
                )
        except AutomaticLabelError as error:
            raise CommandError(str(error)) from error
        detectors = [r for r in result.results if r.detector]
        self.stdout.write(
            f"{opts['name']} / {layer}: {len(detectors)} of {len(result.results)} units are detectors (IoU >= 0.04), "
            f"covering {len({r.label for r in detectors})} concepts ({passes} pass(es) over the features). "
            f"Next: manage.py export --format netdissect --network {opts['name']} --layer {layer}"
        )

    def show_status(self, name: str | None) -> None:
        if not name:
            raise CommandError("--status needs --name (or --network)")
        dissection = service.Dissection.objects.filter(network__name=name).first()
        if dissection is None:
            raise CommandError(f"No dissection named {name!r}")
        self.stdout.write(f"{name}: stage {dissection.stage}")
        for stage in selectors.dissection_progress(dissection):
            if stage.total:  # a stage with nothing to count (yet, or no probe set) is left out
                self.stdout.write(f"  {stage.name}: {stage.done}/{stage.total} ({stage.percent:.0f}%)")
