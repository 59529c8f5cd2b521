"""`python manage.py train_demo_network [--out FILE]`: how the committed demo weights were made."""

from __future__ import annotations

import collections
from typing import Any

import torch
from django.core.management.base import BaseCommand, CommandParser

from pipeline import demo_training
from pipeline.networks import BUILTINS


class Command(BaseCommand):
    help = "Train the demo network on the demo world, save its weights and count its object detectors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--network",
            default="demo",
            choices=sorted(demo_training.DEMO_NETWORKS),
            help="demo (three convolutions) or demo-resnet (three residual stages)",
        )
        parser.add_argument("--out", help="Where to save the weights (default: the committed file)")
        parser.add_argument("--count", type=int, default=6000)
        parser.add_argument("--epochs", type=int, default=12)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: object, **opts: Any) -> None:
        network = opts["network"]
        out = opts["out"] or str(BUILTINS[network].default_weights)
        result = demo_training.train(opts["count"], opts["epochs"], opts["seed"], network=network)
        torch.save(result.model.state_dict(), out)
        self.stdout.write(f"Held-out accuracy {result.accuracy:.3f} after {result.seconds:.0f} s; saved {out}")
        x, _, truth = demo_training.world_tensors(1200, opts["seed"] + 7)
        top = demo_training.DEMO_NETWORKS[network]
        matches = demo_training.unit_concept_iou(result.model, top, x, truth)
        good = [m for m in matches if m.iou > 0.1]
        kinds = collections.Counter(m.category for m in good)
        self.stdout.write(f"{top}: {len(good)} of {len(matches)} units match a concept with IoU > 0.1 ({dict(kinds)})")
