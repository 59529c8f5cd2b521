"""`python manage.py train_demo_network [--out FILE]`: how the committed demo weights were made."""
from __future__ import annotations

import collections

import torch
from django.core.management.base import BaseCommand, CommandParser

from pipeline import demo_training
from pipeline.networks import DEMO_WEIGHTS


class Command(BaseCommand):
    help = "Train the demo network on the demo world, save its weights and count its object detectors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default=str(DEMO_WEIGHTS))
        parser.add_argument("--count", type=int, default=6000)
        parser.add_argument("--epochs", type=int, default=12)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: object, **opts: object) -> None:
        result = demo_training.train(opts["count"], opts["epochs"], opts["seed"])
        torch.save(result.model.state_dict(), opts["out"])
        self.stdout.write(f"Held-out accuracy {result.accuracy:.3f} after {result.seconds:.0f} s; saved {opts['out']}")
        x, _, truth = demo_training.world_tensors(1200, opts["seed"] + 7)
        matches = demo_training.unit_concept_iou(result.model, "features.6", x, truth)
        good = [m for m in matches if m.iou > 0.1]
        kinds = collections.Counter(m.category for m in good)
        self.stdout.write(f"conv3: {len(good)} of {len(matches)} units match a concept with IoU > 0.1 ({dict(kinds)})")
