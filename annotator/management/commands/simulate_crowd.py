"""`python manage.py simulate_crowd CAMPAIGN [--workers 10] [--spammers 0.2] [--noise 0.1] [--seed 0]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.errors import ActionRefused
from annotator.management.arguments import bounded_float
from annotator.services.campaigns import campaign_get
from annotator.services.simulated_crowd import CrowdSettings, crowd_simulate


class Command(BaseCommand):
    help = (
        "Simulated workers answer a local demo-world campaign through the real HIT form over HTTP; then "
        "the aggregation is scored against the world's truth."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign")
        parser.add_argument("--workers", type=int, default=10)
        parser.add_argument(
            "--spammers", type=bounded_float(0, 1), default=0.2, help="Share of workers answering at random"
        )
        parser.add_argument(
            "--noise", type=bounded_float(0, 1), default=0.1, help="Chance an honest worker errs on each choice"
        )
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: object, **opts: Any) -> None:
        if not 0 <= opts["spammers"] <= 1 or not 0 <= opts["noise"] <= 1:
            raise CommandError("--spammers and --noise are shares between 0 and 1.")
        settings = CrowdSettings(
            workers=opts["workers"], spammers=opts["spammers"], noise=opts["noise"], seed=opts["seed"]
        )
        try:
            report = crowd_simulate(campaign=campaign_get(opts["campaign"]), settings=settings)
        except ActionRefused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{report.workers} simulated workers ({round(settings.workers * settings.spammers)} "
            f"spammers, noise {settings.noise}) gave {report.answers} answers over {report.units} units."
        )
        for method, score in report.scores.items():
            self.stdout.write(
                f"  {method:12s} label accuracy {score['label_accuracy']:.3f}, category accuracy "
                f"{score['category_accuracy']:.3f}, mean precision error {score['precision_error']:.3f} "
                f"({score['units']} units)"
            )
