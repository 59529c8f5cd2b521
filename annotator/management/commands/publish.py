"""`python manage.py publish NAME [--backend sandbox|production|prolific|local] [--external-url https://HOST] ...`."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from tqdm import tqdm

from annotator import selectors
from annotator.models import Campaign
from annotator.services.campaigns import CampaignError, campaign_get, campaign_publish, check_backend
from annotator.services.crowds import CrowdError, mturk_client, prolific_client
from annotator.services.mturk_hits import (
    MTurkSettings,
    campaign_publish_mturk,
    check_external_url,
    publish_plan,
)
from annotator.services.prolific_study import ProlificSettings, campaign_publish_prolific, study_plan
from mturk import client as mturk
from prolific.client import ProlificError

DEFAULTS = MTurkSettings(external_url="")
PROLIFIC = ProlificSettings(external_url="")


def _int_or_none(text: str) -> int | None:
    return None if text.lower() in ("", "none", "off") else int(text)


class Command(BaseCommand):
    help = (
        "Publish a campaign's HITs: on the Mechanical Turk sandbox (the default) or production, one HIT per "
        "unit pointing at this site's HIT page; as one Prolific study; or to local annotators. Prints the cost "
        "first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--backend", choices=Campaign.Backend.values, default=Campaign.Backend.SANDBOX)
        parser.add_argument(
            "--external-url",
            default="",
            help="This site's public https address, e.g. "
            "https://annotate.example.org (MTurk frames https://HOST/hit/<key>/)",
        )
        parser.add_argument("--title", default=DEFAULTS.title)
        parser.add_argument("--description", default=DEFAULTS.description)
        parser.add_argument("--keywords", default=DEFAULTS.keywords)
        parser.add_argument("--auto-approval-hours", type=int, default=DEFAULTS.auto_approval_hours)
        parser.add_argument(
            "--lifetime-hours", type=int, default=DEFAULTS.lifetime_hours, help="How long workers can find the HITs"
        )
        parser.add_argument(
            "--frame-height",
            type=int,
            default=DEFAULTS.frame_height,
            help="Pixels; 0 lets MTurk fit the frame to the page",
        )
        parser.add_argument(
            "--min-approval-rate",
            type=_int_or_none,
            default=DEFAULTS.approval_rate,
            help="Percent of a worker's past work approved (95; 'none' to drop)",
        )
        parser.add_argument(
            "--min-approved-hits",
            type=_int_or_none,
            default=DEFAULTS.approved_hits,
            help="HITs of a worker's approved so far (100; 'none' to drop)",
        )
        parser.add_argument("--locale", default="", help="Comma-separated countries (US,GB or US-CA)")
        parser.add_argument("--qualification-type", default="", help="A qualification of yours workers must hold")
        parser.add_argument("--qualification-min", type=int, default=1)
        parser.add_argument(
            "--qualification-test",
            type=Path,
            help="QuestionForm XML: create a qualification "
            "test (with --qualification-answers, an AnswerKey XML) and require it",
        )
        parser.add_argument("--qualification-answers", type=Path)
        parser.add_argument(
            "--hits-per-participant",
            type=int,
            default=PROLIFIC.hits_per_participant,
            help="Prolific: HITs one participant answers (places = answers needed / this)",
        )
        parser.add_argument(
            "--minutes-per-hit",
            type=int,
            default=PROLIFIC.minutes_per_hit,
            help="Prolific: the estimated time of one HIT, for the study's estimated time",
        )
        parser.add_argument(
            "--min-previous-submissions",
            type=_int_or_none,
            default=PROLIFIC.previous_submissions,
            help="Prolific: approved submissions a participant has made (100; 'none' to drop)",
        )
        parser.add_argument(
            "--language", default="", help="Prolific: choice ids of its fluent-languages filter, comma-separated"
        )
        parser.add_argument("--dry-run", action="store_true", help="Print the cost and the balance, create nothing")
        parser.add_argument(
            "--yes", action="store_true", help="Do not ask before spending money (MTurk production, Prolific)"
        )
        parser.add_argument("--as", dest="actor", default=f"cli:{getpass.getuser()}", help="Recorded as who did it")

    def handle(self, *args: object, **opts) -> None:
        try:
            campaign = campaign_get(opts["name"])
            if opts["backend"] == Campaign.Backend.LOCAL:
                return self._local(campaign)
            if opts["backend"] == Campaign.Backend.PROLIFIC:
                return self._prolific(campaign, opts)
            self._mturk(campaign, opts)
        except (CampaignError, CrowdError, mturk.MTurkError, ProlificError) as error:
            raise CommandError(str(error)) from error

    def _local(self, campaign: Campaign) -> None:
        campaign = campaign_publish(campaign=campaign, backend=Campaign.Backend.LOCAL)
        counts = selectors.campaign_counts(campaign)
        self.stdout.write(
            f"Published {campaign.name!r} on local: {counts['hits']} HITs, "
            f"{counts['answers']} of {counts['needed']} answers in. "
            f"Annotators start at {settings.SITE_URL}{reverse('annotate-home')}"
        )

    def _settings(self, opts: dict) -> MTurkSettings:
        if not opts["external_url"]:
            raise CampaignError(
                "--external-url is required for Mechanical Turk: the https address where workers' "
                "browsers reach this site (see the README's sandbox section)."
            )
        return MTurkSettings(
            external_url=check_external_url(opts["external_url"]),
            title=opts["title"],
            description=opts["description"],
            keywords=opts["keywords"],
            auto_approval_hours=opts["auto_approval_hours"],
            lifetime_hours=opts["lifetime_hours"],
            frame_height=opts["frame_height"],
            approval_rate=opts["min_approval_rate"],
            approved_hits=opts["min_approved_hits"],
            locales=[c.strip() for c in opts["locale"].split(",") if c.strip()],
            qualification_type=opts["qualification_type"],
            qualification_min=opts["qualification_min"],
        )

    def _prolific(self, campaign: Campaign, opts: dict) -> None:
        if not opts["external_url"]:
            raise CampaignError(
                "--external-url is required for Prolific: the https address where participants' "
                "browsers reach this site (the study link points there)."
            )
        check_backend(campaign, Campaign.Backend.PROLIFIC)
        settings_ = ProlificSettings(
            external_url=check_external_url(opts["external_url"], local_service="PROLIFIC_API_URL"),
            title=opts["title"] if opts["title"] != DEFAULTS.title else PROLIFIC.title,
            description=opts["description"] if opts["description"] != DEFAULTS.description else PROLIFIC.description,
            hits_per_participant=opts["hits_per_participant"],
            minutes_per_hit=opts["minutes_per_hit"],
            approval_rate=opts["min_approval_rate"],
            previous_submissions=opts["min_previous_submissions"],
            languages=[c.strip() for c in opts["language"].split(",") if c.strip()],
        )
        client = prolific_client()
        plan = study_plan(campaign=campaign, settings=settings_, client=client)
        self.stdout.write(f"Publishing {campaign.name!r} on Prolific (real money):\n{plan.describe()}")
        if opts["dry_run"]:
            self.stdout.write("Dry run: nothing was created.")
            return
        if not opts["yes"]:
            if not sys.stdin.isatty():
                raise CommandError(
                    "Publishing on Prolific spends money: run it in a terminal to confirm, or pass --yes."
                )
            if input(f"Spend up to ${plan.total:.2f}? Type yes to publish: ").strip().lower() != "yes":
                raise CommandError("Not confirmed; nothing was created.")
        report = campaign_publish_prolific(
            campaign=campaign, settings=settings_, client=client, actor=opts["actor"], plan=plan
        )
        made = "created" if report.created else "found (made by an earlier run)"
        went = "published now" if report.published else "published already"
        self.stdout.write(
            f"Study {report.study_id}: {made}, {went}, {report.places} places. Next: manage.py sync {campaign.name}"
        )

    def _mturk(self, campaign: Campaign, opts: dict) -> None:
        backend = opts["backend"]
        check_backend(campaign, backend)
        settings_ = self._settings(opts)  # the URL is checked before any call
        client = mturk_client(backend)
        plan = publish_plan(campaign=campaign, client=client)
        where = "the MTurk SANDBOX (no money)" if backend == "sandbox" else "PRODUCTION MTurk (real money)"
        self.stdout.write(f"Publishing {campaign.name!r} on {where}:\n{plan.describe()}")
        if opts["dry_run"]:
            self.stdout.write("Dry run: nothing was created.")
            return
        if not plan.enough:
            raise CommandError("The account balance does not cover this campaign; nothing was created.")
        if backend == Campaign.Backend.PRODUCTION and not opts["yes"]:
            if not sys.stdin.isatty():
                raise CommandError(
                    "Publishing on production spends money: run it in a terminal to confirm, or pass --yes."
                )
            if input(f"Spend up to ${plan.total:.2f}? Type yes to publish: ").strip().lower() != "yes":
                raise CommandError("Not confirmed; nothing was created.")
        if opts["qualification_test"]:
            if not opts["qualification_answers"]:
                raise CommandError("--qualification-test needs --qualification-answers (the AnswerKey XML).")
            settings_.qualification_type = mturk.create_qualification_test(
                client,
                name=f"{campaign.name}: qualification",
                description=f"Qualification for {settings_.title}",
                test_xml=opts["qualification_test"].read_text(),
                answer_key_xml=opts["qualification_answers"].read_text(),
            )
            self.stdout.write(f"Qualification test created: {settings_.qualification_type}")
        with tqdm(total=plan.hits, unit="HIT", desc="creating HITs", disable=plan.hits == 0) as bar:
            report = campaign_publish_mturk(
                campaign=campaign,
                backend=backend,
                settings=settings_,
                client=client,
                actor=opts["actor"],
                plan=plan,
                progress=bar.update,
            )
        self.stdout.write(
            f"HIT type {report.hit_type_id}: {report.created} HITs created, {report.recovered} found "
            f"created by an earlier run, {report.present} already published. Next: manage.py sync "
            f"{campaign.name}"
        )
