"""A fourth crowd that lives only in the tests: a minimal adapter of `annotator.crowds.base.Crowd` over
an in-memory platform. It shows what a new crowd must provide, and nothing more: its backend, how it
publishes (one job a HIT), the page its workers land on, sync (the platform lists the assignments it
issued, which confirms their answers), decisions and bonuses made on the platform first, blocks and
the HITs' expiry. Registered by one line in settings.CROWDS (see test_fourth_crowd)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.core import signing
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from annotator.crowds.base import Backend, CampaignMoney, Crowd, CrowdError, LifecycleReport, Option, PublishPlan
from annotator.models import Answer, Assignment, Bonus, Campaign, Hit, Worker
from annotator.services.answers import answers_settle
from annotator.services.campaigns import campaign_claim
from annotator.views.hit_form import FormPage, bind_form, message, render_form, submit

NAME = "toy"
SALT = "tests.toy-crowd"


class ToyApi(Protocol):
    """What the adapter asks of its platform (the fake below provides it, as a real client would)."""

    def create_job(self, key: str, wanted: int) -> str: ...
    def issue(self, job: str, worker: str) -> str: ...
    def listed(self, job: str) -> dict[str, str]: ...
    def decide(self, assignment: str, approve: bool, feedback: str) -> None: ...
    def pay(self, worker: str, amount: Decimal, token: str) -> None: ...
    def block(self, worker: str, blocked: bool) -> None: ...
    def expire(self, job: str) -> None: ...


@dataclass
class ToyPlatform:
    """The platform's side: jobs, the assignments it issued (and their state), payments, blocks."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignments: dict[str, dict[str, str]] = field(default_factory=dict)
    paid: list[tuple[str, Decimal, str]] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    refuse: str = ""  # the next call is refused with this message

    def _check(self) -> None:
        if self.refuse:
            why, self.refuse = self.refuse, ""
            raise CrowdError(f"Toy refused: {why}")

    def create_job(self, key: str, wanted: int) -> str:
        self._check()
        job = next((j for j, info in self.jobs.items() if info["key"] == key), f"JOB{len(self.jobs) + 1}")
        self.jobs.setdefault(job, {"key": key, "wanted": wanted, "open": True})
        return job

    def issue(self, job: str, worker: str) -> str:
        if worker in self.blocked or not self.jobs[job]["open"]:
            raise CrowdError("Toy issues no assignment to this worker now.")
        assignment = f"TA{len(self.assignments) + 1}"
        self.assignments[assignment] = {"job": job, "worker": worker, "state": "issued"}
        return assignment

    def listed(self, job: str) -> dict[str, str]:
        return {a: info["state"] for a, info in self.assignments.items() if info["job"] == job}

    def decide(self, assignment: str, approve: bool, feedback: str) -> None:
        self._check()
        self.assignments[assignment]["state"] = "approved" if approve else "rejected"

    def pay(self, worker: str, amount: Decimal, token: str) -> None:
        self._check()
        if any(t == token for _, _, t in self.paid):
            raise CrowdError("Toy refused: this token was paid already.")
        self.paid.append((worker, amount, token))

    def block(self, worker: str, blocked: bool) -> None:
        self._check()
        (self.blocked.add if blocked else self.blocked.discard)(worker)

    def expire(self, job: str) -> None:
        self.jobs[job]["open"] = False


PLATFORM = ToyPlatform()


def toy_client() -> ToyApi:
    return PLATFORM


def _worker(worker_id: str) -> Worker:
    return Worker.objects.get_or_create(kind=NAME, environment="", external_id=worker_id)[0]


@csrf_exempt
def toy_page(request: HttpRequest, key: str) -> HttpResponse:
    """Where the platform sends its workers (?worker=ID): the HIT's form, answered once per assignment."""
    hit = Hit.objects.select_related("campaign").filter(key=key, campaign__platform=NAME).first()
    if hit is None:
        return message(request, "No such HIT", "This HIT is not on Toy.", status=404)
    if request.method == "POST":
        try:
            assignment = Assignment.objects.get(pk=signing.loads(request.POST.get("token", ""), salt=SALT), hit=hit)
        except (signing.BadSignature, Assignment.DoesNotExist):
            return message(request, "This form cannot be sent", "Open the HIT again from Toy.", status=400)
        page = FormPage(hit, bind_form(hit), request.path, {"token": request.POST["token"]})
        result = submit(request, assignment, page)
        return result if isinstance(result, HttpResponse) else message(request, "Thank you", "Your answer is stored.")
    worker = _worker(request.GET.get("worker", ""))
    issued = toy_client().issue(hit.remote_id, worker.external_id)
    now = timezone.now()
    assignment = Assignment.objects.create(hit=hit, worker=worker, external_id=issued, opened_at=now)
    token = signing.dumps(assignment.pk, salt=SALT)
    return render_form(request, FormPage(hit, bind_form(hit), request.path, {"token": token}))


class ToyCrowd(Crowd):
    name = NAME
    label = "Toy crowd"
    short = "Toy"
    backends = (Backend("toy", NAME, "", "Toy crowd"),)
    confirms = True
    syncs = True
    bonus_per = "answer"
    pays_on_approval = True
    lifecycle = ("expire",)

    def publish_options(self) -> list[Option]:
        return [Option(("--toy-note",), {"help": "Toy: a note kept with the campaign"})]

    def publish_plan(self, campaign: Campaign, backend: Backend, options: dict[str, Any]) -> PublishPlan:
        hits = campaign.hits.filter(remote_id="").count()
        total = campaign.reward * campaign.answers_per_unit * hits
        return PublishPlan(
            backend,
            "Toy (play money)",
            f"{hits} jobs, ${total:.2f}",
            total=total,
            spends_money="Toy",
            steps=hits,
            settings=options.get("toy_note", ""),
        )

    def publish(
        self, campaign: Campaign, plan: PublishPlan, *, actor: str, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        campaign_claim(campaign, plan.backend, note=plan.settings)
        created = 0
        for hit in campaign.hits.filter(remote_id="").order_by("id"):
            Hit.objects.filter(pk=hit.pk).update(remote_id=toy_client().create_job(str(hit.key), hit.answers_wanted))
            created += 1
            if progress:
                progress(1)
        return [f"{created} Toy jobs created."]

    def sync(self, campaign: Campaign, *, adopt: bool = False) -> list[str]:
        confirmed: list[int] = []
        states = {"approved": Answer.Review.APPROVED, "rejected": Answer.Review.REJECTED}
        for hit in campaign.hits.exclude(remote_id=""):
            listed = toy_client().listed(hit.remote_id)
            for answer in Answer.objects.filter(hit=hit, assignment__external_id__in=listed).select_related(
                "assignment"
            ):
                state = listed[answer.via_hit()[1].external_id]
                changes: dict[str, str] = {"confirmation": Answer.Confirmation.CONFIRMED}
                if state in states:
                    changes["review"] = states[state]
                Answer.objects.filter(pk=answer.pk).update(**changes)
                confirmed.append(answer.pk)
        answers_settle(confirmed)
        Campaign.objects.filter(pk=campaign.pk).update(synced_at=timezone.now())
        return [f"{len(confirmed)} answers listed by Toy."]

    def takes_late_answer(self, assignment: Assignment, now: datetime) -> bool:
        return False

    def answer_approving(self, answer: Answer, feedback: str) -> None:
        toy_client().decide(answer.via_hit()[1].external_id, True, feedback)

    def answer_rejecting(self, answer: Answer, feedback: str) -> None:
        toy_client().decide(answer.via_hit()[1].external_id, False, feedback)

    def bonus_answer(self, answer: Answer, bonus: Bonus) -> None:
        toy_client().pay(answer.via_hit()[2].external_id, bonus.amount, bonus.token)

    def money(self, campaign: Campaign) -> CampaignMoney:
        counts = Answer.objects.filter(hit__campaign=campaign).aggregate(
            approved=Count("id", filter=Q(review=Answer.Review.APPROVED)),
            submitted=Count("id", filter=Q(review=Answer.Review.SUBMITTED)),
        )
        bonuses = sum(
            Bonus.objects.filter(answer__hit__campaign=campaign, paid=True).values_list("amount", flat=True), Decimal(0)
        )
        return CampaignMoney(
            True,
            counts["approved"],
            counts["submitted"],
            campaign.reward * counts["approved"] + bonuses,
            campaign.reward * counts["submitted"],
            bonuses,
            platform=self.label,
            noun="job",
            basis="rewards at face value",
        )

    def block(self, worker: Worker, *, block: bool, reason: str) -> None:
        toy_client().block(worker.external_id, block)

    def hits_change(self, campaign: Campaign, action: str, *, hours: int) -> LifecycleReport:
        report = LifecycleReport()
        for hit in campaign.hits.exclude(remote_id=""):
            toy_client().expire(hit.remote_id)
            report.done += 1
        return report

    def urls(self) -> list[URLPattern]:
        return [path("toy/<uuid:key>/", toy_page, name="toy-hit")]


def toy_url(hit: Hit, worker: str) -> str:
    return f"{reverse('toy-hit', args=[hit.key])}?worker={worker}"
