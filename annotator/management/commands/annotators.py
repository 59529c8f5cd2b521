"""`python manage.py annotators invite USERNAME [--email E]` | `link LABEL ... [--valid-days N]` |
`revoke LABEL ...` | `list` | `block|unblock WORKER`."""

from __future__ import annotations

import getpass
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.errors import ActionRefused
from annotator.management.arguments import bounded_float
from annotator.models import Worker
from annotator.services.workers import (
    LAB_LINK_DAYS,
    WorkerError,
    annotator_invite,
    lab_link_create,
    lab_link_revoke,
    worker_block,
)


class Command(BaseCommand):
    help = "Invite annotator accounts, make lab-session links, list workers."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        invite = actions.add_parser(
            "invite", help="Create an account and print the link where its owner sets a password"
        )
        invite.add_argument("username")
        invite.add_argument("--email", default="")
        link = actions.add_parser(
            "link", help="Print a link per label that signs a browser in as that worker, without an account"
        )
        link.add_argument("labels", nargs="+")
        link.add_argument(
            "--valid-days",
            type=bounded_float(0.01, 366),
            default=LAB_LINK_DAYS,
            help=f"Days the link signs people in (default {LAB_LINK_DAYS})",
        )
        revoke = actions.add_parser(
            "revoke", help="Stop every link made for these labels; their browsers are signed out"
        )
        revoke.add_argument("labels", nargs="+")
        actions.add_parser("list", help="Workers and their answer counts")
        for name, text in (
            ("block", "Give a worker no more HITs (on their platform too: its block)"),
            ("unblock", "Lift a block"),
        ):
            sub = actions.add_parser(name, help=text)
            sub.add_argument("worker", help="The worker's id (the platform's, a lab-link label or a username)")
            sub.add_argument("--reason", default="", help="Shown to the worker on their platform (required to block)")
            sub.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}")

    def handle(self, *args: object, **opts: Any) -> None:
        try:
            if opts["action"] == "invite":
                path = annotator_invite(username=opts["username"], email=opts["email"])
                self.stdout.write(f"Invitation for {opts['username']}: {settings.SITE_URL}{path}")
            elif opts["action"] == "link":
                for label in opts["labels"]:
                    _, path = lab_link_create(label=label, valid_days=opts["valid_days"])
                    self.stdout.write(f"{label}\t{settings.SITE_URL}{path}")
            elif opts["action"] == "revoke":
                for label in opts["labels"]:
                    lab_link_revoke(label=label)
                    self.stdout.write(f"{label}: every link made so far is revoked.")
            elif opts["action"] in ("block", "unblock"):
                found = list(Worker.objects.filter(external_id=opts["worker"]))
                if len(found) != 1:
                    raise WorkerError(f"{len(found)} workers are named {opts['worker']!r}; name exactly one.")
                worker = worker_block(
                    worker_id=found[0].pk,
                    reviewer_name=opts["actor"],
                    reason=opts["reason"],
                    block=opts["action"] == "block",
                )
                state = "blocked" if worker.blocked else "unblocked"
                self.stdout.write(f"{worker.external_id} ({worker.kind}) is {state}.")
            else:
                for worker in Worker.objects.order_by("kind", "external_id").prefetch_related("answers"):
                    blocked = "\tblocked" if worker.blocked else ""
                    count = len(worker.answers.all())
                    self.stdout.write(f"{worker.kind}\t{worker.external_id}\t{count} answers{blocked}")
        except ActionRefused as error:
            raise CommandError(str(error)) from error
