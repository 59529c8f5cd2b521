"""`python manage.py demo_world --out DIR [--count N] [--seed S] [--broden]`: the procedural image set
(DIR/images) with its per-pixel truth (DIR/truth.npz, DIR/world.json); with --broden also (or, for a
world already there, only) the same truth in the Broden layout, the probe set of automatic labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from pipeline import demo_broden, demo_world


class Command(BaseCommand):
    help = "Render the demo world's scenes with their per-pixel truth."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True)
        parser.add_argument("--count", type=int, default=1200)
        parser.add_argument("--seed", type=int, default=2015)
        parser.add_argument(
            "--broden", action="store_true", help="Write the truth in the Broden layout too (only that, if it exists)"
        )

    def handle(self, *args: object, **opts: Any) -> None:
        out = Path(opts["out"])
        if not (opts["broden"] and (out / "truth.npz").is_file()):
            demo_world.generate(out, opts["count"], opts["seed"])
            self.stdout.write(f"Wrote {opts['count']} scenes with truth.npz and world.json to {out}")
        if opts["broden"]:
            demo_broden.write_broden(out)
            self.stdout.write(
                f"Wrote the Broden layout (index.csv, label.csv, category.csv, c_*.csv, labels/) to {out}"
            )
