"""`python manage.py demo_world --out DIR [--count N] [--seed S]`: the procedural image set
(DIR/images) with its per-pixel truth (DIR/truth.npz, DIR/world.json)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from pipeline import demo_world


class Command(BaseCommand):
    help = "Render the demo world's scenes with their per-pixel truth."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True)
        parser.add_argument("--count", type=int, default=1200)
        parser.add_argument("--seed", type=int, default=2015)

    def handle(self, *args: object, **opts: Any) -> None:
        out = demo_world.generate(opts["out"], opts["count"], opts["seed"])
        self.stdout.write(f"Wrote {opts['count']} scenes with truth.npz and world.json to {out}")
