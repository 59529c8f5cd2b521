"""`python manage.py simulate_crowd CAMPAIGN [--task describe|presence] [--workers 10] [--spammers 0.2]
[--noise 0.1 | --flip 0.23] [--seed 0]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.errors import ActionRefused
from annotator.management.arguments import bounded_float
from annotator.services.campaigns import campaign_get
from annotator.services.simulated_crowd import CrowdSettings, crowd_simulate
from annotator.task_kinds import task_for, tasks


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
            "--noise",
            "--flip",
            dest="noise",
            type=bounded_float(0, 1),
            default=0.1,
            help="Chance an honest worker errs on each choice (the presence task's flip rate)",
        )
        parser.add_argument(
            "--task", choices=list(tasks()), help="The campaign's task, checked (the campaign says which it is)"
        )
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: object, **opts: Any) -> None:
        if not 0 <= opts["spammers"] <= 1 or not 0 <= opts["noise"] <= 1:
            raise CommandError("--spammers and --noise are shares between 0 and 1.")
        settings = CrowdSettings(
            workers=opts["workers"], spammers=opts["spammers"], noise=opts["noise"], seed=opts["seed"]
        )
        try:
            campaign = campaign_get(opts["campaign"])
            task = task_for(campaign)
            if opts["task"] and opts["task"] != task.name:
                raise CommandError(f"Campaign {campaign.name!r} asks the {task.name} task, not {opts['task']}.")
            report = crowd_simulate(campaign=campaign, settings=settings)
        except ActionRefused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{report.workers} simulated workers ({round(settings.workers * settings.spammers)} "
            f"spammers, noise {settings.noise}) gave {report.answers} answers over {report.units} HITs."
        )
        for line in report.lines:
            self.stdout.write(line)
