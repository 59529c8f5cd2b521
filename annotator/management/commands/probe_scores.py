"""`python manage.py probe_scores NETWORK`: every unit's score on every image, for a dissection made
before `dissect` kept them (it runs only the activation pass, and only for the chunks that lack them)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotator.errors import ActionRefused
from annotator.models import Dissection
from annotator.services.probe import probe_missing, probe_scores_fill


class Command(BaseCommand):
    help = (
        "Keep every unit's score (maximum and spatial mean) on every image of a dissection's probe set, for the "
        "presence campaigns that check labels beyond the top images. Interrupted, it resumes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("network", help="The dissected network's name")

    def handle(self, *args: object, **opts: Any) -> None:
        dissection = Dissection.objects.select_related("network").filter(network__name=opts["network"]).first()
        if dissection is None:
            raise CommandError(f"No dissection of a network named {opts['network']!r}: run `dissect` first.")
        todo = sum(chunk.image_count for chunk in probe_missing(dissection))
        try:
            with tqdm(total=todo, unit="image", desc="probe scores", disable=todo == 0) as bar:
                written = probe_scores_fill(dissection, progress=bar.update)
        except ActionRefused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{dissection.network.name}: probe scores of {dissection.image_count} images, "
            f"{written} chunk(s) computed now, {dissection.chunks.count() - written} kept."
        )
