"""`python manage.py annotators invite USERNAME [--email E]` | `link LABEL [LABEL ...]` | `list`."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.models import Worker
from annotator.services.workers import WorkerError, annotator_invite, lab_link_create


class Command(BaseCommand):
    help = "Invite annotator accounts, make lab-session links, list workers."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        invite = actions.add_parser("invite", help="Create an account and print the link where its owner sets a "
                                                   "password")
        invite.add_argument("username")
        invite.add_argument("--email", default="")
        link = actions.add_parser("link", help="Print a link per label that signs a browser in as that worker, "
                                               "without an account")
        link.add_argument("labels", nargs="+")
        actions.add_parser("list", help="Workers and their answer counts")

    def handle(self, *args: object, **opts) -> None:
        try:
            if opts["action"] == "invite":
                path = annotator_invite(username=opts["username"], email=opts["email"])
                self.stdout.write(f"Invitation for {opts['username']}: {settings.SITE_URL}{path}")
            elif opts["action"] == "link":
                for label in opts["labels"]:
                    _, path = lab_link_create(label=label)
                    self.stdout.write(f"{label}\t{settings.SITE_URL}{path}")
            else:
                for worker in Worker.objects.order_by("kind", "external_id").prefetch_related("answers"):
                    self.stdout.write(f"{worker.kind}\t{worker.external_id}\t{len(worker.answers.all())} answers")
        except WorkerError as error:
            raise CommandError(str(error)) from error
