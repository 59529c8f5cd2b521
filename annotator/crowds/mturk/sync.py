"""Keeping a campaign in step with Mechanical Turk: each HIT's state, and every assignment in every
status. Our HIT page stores each answer before the browser hands it to MTurk, so MTurk's copy is
checked against ours: statuses are mirrored (MTurk's auto-approval included), an answer of ours counts
only once MTurk lists its assignment, and whatever only one side has, or what differs, is reported.
An assignment only MTurk has is added only when asked (`adopt`), parsed from its QuestionFormAnswers
by the HIT task's own rules. Running it twice changes nothing the second time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils import timezone

from annotator.crowds.mturk.common import NAME, mturk_worker
from annotator.models import Answer, Campaign, Hit, HitImage
from annotator.services.aggregation import units_aggregate
from annotator.services.answers import answer_adopt, answers_settle
from annotator.task_kinds import task_for
from mturk import client as mturk
from mturk.client import MTurkClient
from mturk.question import AnswerXMLError, parse_answers

STATUS = {"Submitted": Answer.Review.SUBMITTED, "Approved": Answer.Review.APPROVED, "Rejected": Answer.Review.REJECTED}


@dataclass
class HitSyncReport:
    """What an MTurk sync found: each HIT's state, the assignments matched, and what only one side has."""

    hits: int = 0
    assignments: int = 0
    matched: int = 0
    changed: Counter = field(default_factory=Counter)
    adopted: int = 0
    confirmed: int = 0
    hit_states: Counter = field(default_factory=Counter)
    only_on_mturk: list[str] = field(default_factory=list)
    only_here: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.hit_states.items())) or "none"
        changes = ", ".join(f"{n} now {s}" for s, n in sorted(self.changed.items())) or "no status changed"
        out = [
            f"{self.hits} HITs ({states}); {self.assignments} assignments on MTurk, {self.matched} matched ours; "
            f"{changes}; {self.confirmed} confirmed; {self.adopted} adopted."
        ]
        out += [f"only on MTurk: {line}" for line in self.only_on_mturk]
        out += [f"only here: {line}" for line in self.only_here]
        out += [f"differs: {line}" for line in self.differing]
        out += [f"worker mismatch: {line}" for line in self.mismatched]
        return out


def parse_mturk_answer(hit: Hit, xml: str, positions: list[int] | None = None) -> tuple:
    """The answer in an assignment's QuestionFormAnswers, as the HIT's task reads it (for the describe
    task: description, category, marked slots); ValueError says what is wrong, by the same rules as the
    HIT form. `positions`: the HIT's slots, if known."""
    try:
        fields = parse_answers(xml)
    except AnswerXMLError as error:
        raise ValueError(str(error)) from None
    if positions is None:
        positions = list(HitImage.objects.filter(hit=hit).order_by("position").values_list("position", flat=True))
    return task_for(hit.campaign).parse_platform_fields(hit, fields, positions)


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)  # type: ignore[arg-type]  # MTurk's epoch seconds


def campaign_sync(
    *, campaign: Campaign, client: MTurkClient, adopt: bool = False, now: datetime | None = None
) -> HitSyncReport:
    """Mirror MTurk's view of every HIT of the campaign. An answer of ours that MTurk lists under the
    same worker is confirmed (and counts from then on); one MTurk lists under another worker is a
    mismatch, and one it still does not list after its assignment's deadline is unknown to MTurk:
    both kept, shown and reported, never counted or paid."""
    now = now or timezone.now()
    report = HitSyncReport()
    settle: set[int] = set()
    touched: set[int] = set()
    task = task_for(campaign)
    for hit in campaign.hits.exclude(remote_id="").select_related("campaign").order_by("id"):
        report.hits += 1
        info = mturk.get_hit(client, hit.remote_id)
        state = info["HITStatus"] if info else "Deleted"
        report.hit_states[state] += 1
        counts = {k: info.get(f"NumberOfAssignments{k}") for k in ("Pending", "Available", "Completed")} if info else {}
        Hit.objects.filter(pk=hit.pk).update(
            remote_status=state,
            remote_expires_at=_when(info.get("Expiration")) if info else hit.remote_expires_at,
            remote_counts=counts,
        )
        items = mturk.list_assignments(client, hit.remote_id) if info else []
        ours = {
            a.assignment.external_id: a
            for a in Answer.objects.filter(hit=hit).exclude(assignment=None).select_related("assignment", "worker")
            if a.assignment is not None
        }
        positions = list(HitImage.objects.filter(hit=hit).values_list("position", flat=True)) if items else []
        for item in items:
            report.assignments += 1
            answer = ours.pop(item["AssignmentId"], None)
            try:
                parsed = parse_mturk_answer(hit, item.get("Answer", ""), positions)
            except ValueError as error:
                parsed, problem = None, str(error)
            if answer is None:
                if adopt and parsed is not None:
                    answer_adopt(
                        hit=hit,
                        assignment_id=item["AssignmentId"],
                        worker=mturk_worker(campaign, item["WorkerId"]),
                        copy=parsed,
                        accepted_at=_when(item.get("AcceptTime")),
                        submitted_at=_when(item.get("SubmitTime")),
                        review=STATUS[item["AssignmentStatus"]],
                    )
                    touched.update(task.units_of(hit))
                    report.adopted += 1
                    continue
                why = f"its answer cannot be read: {problem}" if parsed is None else "no answer stored here"
                report.only_on_mturk.append(
                    f"{item['AssignmentId']} (worker {item['WorkerId']}, "
                    f"HIT {hit.remote_id}, {item['AssignmentStatus'].lower()}): {why}"
                )
                continue
            stored = answer.worker.external_id if answer.worker else ""
            if stored != item["WorkerId"]:  # one person, one vote: the assignment is MTurk's worker's
                if answer.confirmation != Answer.Confirmation.MISMATCH:
                    Answer.objects.filter(pk=answer.pk).update(confirmation=Answer.Confirmation.MISMATCH)
                    settle.add(answer.pk)
                report.mismatched.append(
                    f"{item['AssignmentId']} (HIT {hit.remote_id}): MTurk lists worker {item['WorkerId']}, "
                    f"the answer here names {stored or 'no worker'}: kept, never counted"
                )
                continue
            report.matched += 1
            if parsed is None:
                report.differing.append(f"{item['AssignmentId']}: MTurk's copy cannot be read: {problem}")
            elif parsed != task.copy_of(answer):
                report.differing.append(
                    f"{item['AssignmentId']}: MTurk has {task.show_copy(parsed)}, "
                    f"we have {task.show_copy(task.copy_of(answer))}"
                )
            changes: dict[str, str] = {}
            status = STATUS.get(item["AssignmentStatus"])
            if status and status != answer.review:
                changes["review"] = status
                report.changed[status] += 1
            if answer.confirmation != Answer.Confirmation.CONFIRMED:
                changes["confirmation"] = Answer.Confirmation.CONFIRMED
                report.confirmed += 1
            if changes:
                Answer.objects.filter(pk=answer.pk).update(**changes)
                settle.add(answer.pk)
        for external_id, answer in ours.items():
            if answer.source != NAME:
                continue
            deadline = answer.via_hit()[1].expires_at
            past = not info or deadline is None or now > deadline
            if past and answer.confirmation == Answer.Confirmation.UNCONFIRMED:
                Answer.objects.filter(pk=answer.pk).update(confirmation=Answer.Confirmation.UNKNOWN)
                settle.add(answer.pk)
            note = "MTurk does not list it" + (
                ": unknown to MTurk, not counted" if past else " yet: unconfirmed until it does"
            )
            report.only_here.append(
                f"{external_id} (worker {answer.worker.external_id if answer.worker else '?'},"
                f" HIT {hit.remote_id}): {note}"
            )
    touched |= answers_settle(settle)
    if touched:
        units_aggregate(unit_ids=sorted(touched))
    Campaign.objects.filter(pk=campaign.pk).update(synced_at=timezone.now())
    return report
