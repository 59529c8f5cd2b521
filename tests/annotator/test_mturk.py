"""Campaigns on Mechanical Turk through the commands, each MTurk call checked by botocore's Stubber
against the real service model: publish (URL checks, cost and balance, confirmation, idempotent
re-runs), sync (statuses, auto-approval, reports, adoption), review by rule, bonuses, blocks, HITs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from botocore.stub import ANY
from django.core.management import CommandError, call_command

from annotator.crowds.mturk.publish import hit_token
from annotator.models import Answer, Bonus, Campaign, Hit, ReviewAction, UnitLabel, Worker
from mturk.question import answers_xml
from tests.factories import answer_hit, as_mturk_answer, concept_network

pytestmark = pytest.mark.django_db
URL = "https://localhost"  # resolves everywhere; https as MTurk requires


@pytest.fixture
def campaign(world_dir) -> Campaign:
    concept_network(world_dir, concepts=("car", "house"))
    call_command(
        "create_campaign", "c", "--network", "world", "--layers", "conv3", "--images-per-hit", "20", "--reward", "0.25"
    )
    return Campaign.objects.get(name="c")


def expect_publish(stubber, campaign: Campaign, balance: str = "100.00", created: bool = True) -> list[str]:
    stubber.add_response("get_account_balance", {"AvailableBalance": balance}, {})
    stubber.add_response(
        "create_hit_type",
        {"HITTypeId": "3TYPE"},
        {
            "Title": ANY,
            "Description": ANY,
            "Keywords": ANY,
            "Reward": "0.25",
            "AssignmentDurationInSeconds": 1800,
            "AutoApprovalDelayInSeconds": 72 * 3600,
            "QualificationRequirements": ANY,
        },
    )
    ids = []
    for hit in campaign.hits.order_by("id"):
        ids.append(f"3HIT{hit.unit.index:026d}")
        params = {
            "HITTypeId": "3TYPE",
            "MaxAssignments": 3,
            "LifetimeInSeconds": 168 * 3600,
            "Question": f'<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas'
            f'/2006-07-14/ExternalQuestion.xsd"><ExternalURL>{URL}/hit/{hit.key}/</ExternalURL>'
            "<FrameHeight>0</FrameHeight></ExternalQuestion>",
            "RequesterAnnotation": ANY,
            "UniqueRequestToken": hit_token(hit),
        }
        if created:
            stubber.add_response("create_hit_with_hit_type", {"HIT": {"HITId": ids[-1]}}, params)
        else:
            stubber.add_client_error(
                "create_hit_with_hit_type",
                "RequestError",
                f"The HIT with ID {ids[-1]} already exists",
                400,
                expected_params=params,
            )
    return ids


def test_publish_checks_the_url_before_any_call(campaign, stubbed_mturk) -> None:
    # No response is queued: any call to MTurk would fail the test.
    for url, message in (
        ("http://annotate.example.org", "must use https"),
        ("ftp://x.org", "not a site address"),
        ("https://no-such-host.invalid", "does not resolve"),
        ("", "--external-url is required"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("publish", "c", "--backend", "sandbox", "--external-url", url)
    assert Campaign.objects.get(pk=campaign.pk).platform == ""


def test_dry_run_prints_the_cost_and_creates_nothing(campaign, stubbed_mturk, capsys) -> None:
    stubbed_mturk.add_response("get_account_balance", {"AvailableBalance": "1.00"}, {})
    call_command("publish", "c", "--external-url", URL, "--dry-run")
    out = capsys.readouterr().out
    # 2 HITs x 3 assignments x ($0.25 + 20%: $0.05) = $1.80
    assert "the MTurk SANDBOX" in out and "2 HITs x 3 assignments x $0.25" in out and "= $1.80" in out
    assert "Account balance: $1.00 (not enough)" in out
    assert Campaign.objects.get(pk=campaign.pk).platform == "" and not Hit.objects.exclude(remote_id="").exists()


def test_a_balance_too_small_stops_before_anything_is_created(campaign, stubbed_mturk) -> None:
    stubbed_mturk.add_response("get_account_balance", {"AvailableBalance": "1.79"}, {})
    with pytest.raises(CommandError, match="balance does not cover"):
        call_command("publish", "c", "--external-url", URL)


def test_production_needs_a_confirmation(campaign, stubbed_mturk, monkeypatch) -> None:
    stubbed_mturk.add_response("get_account_balance", {"AvailableBalance": "100.00"}, {})
    with pytest.raises(CommandError, match="spends money"):
        call_command("publish", "c", "--backend", "production", "--external-url", URL)
    stubbed_mturk.add_response("get_account_balance", {"AvailableBalance": "100.00"}, {})
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Not confirmed"):
        call_command("publish", "c", "--backend", "production", "--external-url", URL)
    assert not Hit.objects.exclude(remote_id="").exists()


def test_publish_creates_each_hit_once_even_after_a_crash(campaign, stubbed_mturk, capsys) -> None:
    ids = expect_publish(stubbed_mturk, campaign)
    call_command("publish", "c", "--external-url", URL + "/", "--as", "alice")
    assert sorted(Hit.objects.values_list("remote_id", flat=True)) == sorted(ids)
    campaign.refresh_from_db()
    assert (campaign.platform, campaign.environment, campaign.status, campaign.crowd_state["hit_type_id"]) == (
        "mturk",
        "sandbox",
        "published",
        "3TYPE",
    )
    assert ReviewAction.objects.get(action="publish").actor == "alice"
    # Again: every HIT has its id, so nothing is created (only the balance and the HIT type are asked).
    stubbed_mturk.add_response("create_hit_type", {"HITTypeId": "3TYPE"}, None)
    call_command("publish", "c", "--external-url", URL)
    assert "0 HITs created, 0 found created by an earlier run, 2 already published" in capsys.readouterr().out
    # A crash after MTurk created the HITs but before we stored their ids: the tokens find them.
    Hit.objects.update(remote_id="")
    expect_publish(stubbed_mturk, campaign, created=False)
    call_command("publish", "c", "--external-url", URL)
    assert "0 HITs created, 2 found created by an earlier run" in capsys.readouterr().out
    assert sorted(Hit.objects.values_list("remote_id", flat=True)) == sorted(ids)


def published(campaign: Campaign) -> dict[int, Hit]:
    Campaign.objects.filter(pk=campaign.pk).update(platform="mturk", environment="sandbox", status="published")
    for hit in campaign.hits.all():
        Hit.objects.filter(pk=hit.pk).update(remote_id=f"3HIT{hit.unit.index:026d}")
    return {hit.unit.index: hit for hit in Hit.objects.filter(campaign=campaign).select_related("campaign")}


def mturk_answer(hit: Hit, assignment_id: str, worker: str, description: str = "car", **kwargs) -> Answer:
    return as_mturk_answer(answer_hit(hit, worker, description, "object", **kwargs), assignment_id)


def hit_info(hit_id: str, status: str = "Assignable") -> dict:
    return {
        "HIT": {
            "HITId": hit_id,
            "HITStatus": status,
            "Expiration": datetime(2030, 1, 1, tzinfo=UTC),
            "NumberOfAssignmentsPending": 0,
            "NumberOfAssignmentsAvailable": 1,
            "NumberOfAssignmentsCompleted": 2,
        }
    }


def item(answer_id: str, worker: str, status: str, hit: Hit, fields: dict) -> dict:
    return {
        "AssignmentId": answer_id,
        "WorkerId": worker,
        "HITId": hit.remote_id,
        "AssignmentStatus": status,
        "Answer": answers_xml(fields),
        "AcceptTime": datetime(2026, 1, 1, tzinfo=UTC),
        "SubmitTime": datetime(2026, 1, 1, 0, 2, tzinfo=UTC),
    }


def fields_of(answer: Answer) -> dict:
    return {
        "assignmentId": answer.assignment.external_id,
        "description": answer.description,
        "category": answer.category,
        "mismatch": ",".join(map(str, answer.marked)),
    }


def test_sync_mirrors_statuses_and_reports_what_one_side_lacks(campaign, stubbed_mturk, capsys) -> None:
    hits = published(campaign)
    car, house = hits[0], hits[1]
    a1 = mturk_answer(car, "A1", "W1")
    a2 = mturk_answer(car, "A2", "W2")
    lost = mturk_answer(house, "A9", "W9")  # we stored it; MTurk does not list it
    gold = ",".join(str(p) for p in house.slots.filter(gold=True).values_list("position", flat=True))
    listing = {
        car.remote_id: [
            item("A1", "W1", "Approved", car, fields_of(a1)),  # auto-approved by MTurk
            item("A2", "W2", "Submitted", car, {**fields_of(a2), "description": "truck"}),
        ],
        house.remote_id: [
            item("A3", "W3", "Submitted", house, {"description": "house", "category": "object", "mismatch": gold}),
            item("A4", "W4", "Submitted", house, {"description": "<b>", "category": "object"}),
        ],
    }

    def expect() -> None:
        for hit in (car, house):
            stubbed_mturk.add_response("get_hit", hit_info(hit.remote_id), {"HITId": hit.remote_id})
            items = listing[hit.remote_id]
            base = {"HITId": hit.remote_id, "MaxResults": 100, "AssignmentStatuses": ANY}
            page = "list_assignments_for_hit"
            stubbed_mturk.add_response(page, {"Assignments": items[:1], "NextToken": "n"}, base)
            stubbed_mturk.add_response(page, {"Assignments": items[1:]}, {**base, "NextToken": "n"})

    expect()
    call_command("sync", "c")
    out = capsys.readouterr().out
    assert (
        "2 HITs (2 assignable); 4 assignments on MTurk, 2 matched ours; 1 now approved; 0 confirmed; 0 adopted."
    ) in out
    assert "only on MTurk: A3 (worker W3" in out and "no answer stored here" in out
    assert "only on MTurk: A4" in out and "description: Use words only" in out
    assert "only here: A9 (worker W9" in out
    assert "differs: A2: MTurk has 'truck'" in out
    assert Answer.objects.get(pk=a1.pk).review == "approved" and Answer.objects.get(pk=a2.pk).review == "submitted"
    assert Hit.objects.get(pk=car.pk).remote_status == "Assignable"
    assert Hit.objects.get(pk=car.pk).remote_counts == {"Pending": 0, "Available": 1, "Completed": 2}
    # Again: nothing changes; adopting stores A3 (readable), never A4.
    expect()
    call_command("sync", "c", "--adopt")
    out = capsys.readouterr().out
    assert "0 now" not in out and "no status changed; 0 confirmed; 1 adopted." in out
    adopted = Answer.objects.get(assignment__external_id="A3")
    assert (adopted.description, adopted.worker.external_id, adopted.gold_passed, adopted.source) == (
        "house",
        "W3",
        True,
        "mturk",
    )
    assert Answer.objects.count() == 4 and lost.pk


def test_review_by_rule_rejects_on_mturk_and_approves_the_rest(campaign, stubbed_mturk, capsys) -> None:
    hits = published(campaign)
    good = mturk_answer(hits[0], "A1", "W1", seconds=60)
    no_gold = mturk_answer(hits[0], "A2", "W2", gold=False, seconds=60)
    nonsense = mturk_answer(hits[1], "A3", "W3", description="asdf", seconds=60)
    fast = mturk_answer(hits[1], "A4", "W4", seconds=4)
    call_command(
        "review",
        "c",
        "--reject-rule",
        "gold-failed",
        "nonsense",
        "too-fast",
        "--approve-passing",
        "--feedback",
        "See the instructions",
        "--dry-run",
    )
    assert "3 answers would be rejected, 1 approved" in capsys.readouterr().out
    stubbed_mturk.add_response("approve_assignment", {}, {"AssignmentId": "A1", "OverrideRejection": False})
    for assignment, rules in (("A2", "gold-failed"), ("A3", "nonsense"), ("A4", "too-fast")):
        stubbed_mturk.add_response(
            "reject_assignment",
            {},
            {"AssignmentId": assignment, "RequesterFeedback": f"See the instructions ({rules})"},
        )
    call_command(
        "review",
        "c",
        "--reject-rule",
        "gold-failed",
        "nonsense",
        "too-fast",
        "--approve-passing",
        "--feedback",
        "See the instructions",
        "--as",
        "bob",
    )
    assert "3 answers were rejected, 1 approved, 0 refused" in capsys.readouterr().out
    reviews = dict(Answer.objects.values_list("pk", "review"))
    assert reviews == {good.pk: "approved", no_gold.pk: "rejected", nonsense.pk: "rejected", fast.pk: "rejected"}
    assert set(ReviewAction.objects.values_list("actor", flat=True)) == {"bob"}
    assert UnitLabel.objects.get(unit_id=hits[1].unit_id).answers == 0
    with pytest.raises(CommandError, match="--feedback is required"):
        call_command("review", "c", "--reject", "A1")


def test_bonus_is_paid_once_and_recorded(campaign, stubbed_mturk, capsys) -> None:
    hits = published(campaign)
    mturk_answer(hits[0], "A1", "W1")
    stubbed_mturk.add_response(
        "send_bonus",
        {},
        {
            "WorkerId": "W1",
            "AssignmentId": "A1",
            "BonusAmount": "0.50",
            "Reason": "Careful marks",
            "UniqueRequestToken": ANY,
        },
    )
    call_command("bonus", "A1", "--amount", "0.5", "--reason", "Careful marks")
    assert "Paid $0.50 to W1" in capsys.readouterr().out
    bonus = Bonus.objects.get()
    assert (bonus.amount, bonus.paid, bonus.token) == (Decimal("0.50"), True, f"bonus-{bonus.answer_id}-1")
    stubbed_mturk.add_client_error("send_bonus", "RequestError", "Insufficient funds", 400)
    with pytest.raises(CommandError, match="Insufficient funds"):
        call_command("bonus", "A1", "--amount", "0.5", "--reason", "again")
    assert Bonus.objects.count() == 1
    for amount, message in (("0", "between"), ("abc", "amount of dollars")):
        with pytest.raises(CommandError, match=message):
            call_command("bonus", "A1", "--amount", amount, "--reason", "x")


def test_blocking_a_worker(campaign, stubbed_mturk, capsys) -> None:
    hits = published(campaign)
    mturk_answer(hits[0], "A1", "W1")
    stubbed_mturk.add_response("create_worker_block", {}, {"WorkerId": "W1", "Reason": "Random answers"})
    call_command("annotators", "block", "W1", "--reason", "Random answers")
    assert Worker.objects.get(external_id="W1").blocked
    call_command("annotators", "block", "W1", "--reason", "again")  # already blocked: no call
    stubbed_mturk.add_response("delete_worker_block", {}, {"WorkerId": "W1", "Reason": "appeal"})
    call_command("annotators", "unblock", "W1", "--reason", "appeal")
    assert not Worker.objects.get(external_id="W1").blocked
    assert list(ReviewAction.objects.order_by("id").values_list("action", flat=True)) == ["block", "unblock"]
    with pytest.raises(CommandError, match="Say why"):
        call_command("annotators", "block", "W1")


def test_a_blocked_local_worker_gets_no_more_hits(campaign) -> None:
    from annotator.services.assignments import assignment_claim
    from annotator.services.workers import worker_block

    call_command("publish", "c", "--backend", "local")
    worker = Worker.objects.create(kind="link", external_id="seat-1")
    worker_block(worker_id=worker.pk, reviewer_name="r", reason="left early")
    assert assignment_claim(worker=Worker.objects.get(pk=worker.pk)) is None


def test_expire_extend_and_delete_hits(campaign, stubbed_mturk, capsys) -> None:
    hits = published(campaign)
    for hit in hits.values():
        stubbed_mturk.add_response("update_expiration_for_hit", {}, {"HITId": hit.remote_id, "ExpireAt": ANY})
    call_command("hits", "c", "expire")
    assert "expire: 2 HITs, 0 refused" in capsys.readouterr().out
    before = datetime.now(UTC)
    for hit in hits.values():
        stubbed_mturk.add_response("update_expiration_for_hit", {}, {"HITId": hit.remote_id, "ExpireAt": ANY})
    call_command("hits", "c", "extend", "--hours", "48")
    assert all(h.remote_expires_at >= before + timedelta(hours=48) for h in Hit.objects.all())
    stubbed_mturk.add_response("delete_hit", {}, {"HITId": hits[0].remote_id})
    stubbed_mturk.add_client_error(
        "delete_hit",
        "RequestError",
        "This HIT is currently in the state 'Assignable'",
        400,
        expected_params={"HITId": hits[1].remote_id},
    )
    call_command("hits", "c", "delete")
    captured = capsys.readouterr()
    assert "delete: 1 HITs, 1 refused" in captured.out and "state 'Assignable'" in captured.err
    assert Hit.objects.get(pk=hits[0].pk).remote_status == "Deleted"


def test_the_periodic_task_syncs_every_published_mturk_campaign(campaign, stubbed_mturk, settings) -> None:
    from annotator.tasks import crowd_sync_all
    from config.celery import app

    hits = published(campaign)
    answer = mturk_answer(hits[0], "A1", "W1")
    for hit in hits.values():
        stubbed_mturk.add_response("get_hit", hit_info(hit.remote_id), {"HITId": hit.remote_id})
        listed = [item("A1", "W1", "Approved", hit, fields_of(answer))] if hit.pk == hits[0].pk else []
        stubbed_mturk.add_response(
            "list_assignments_for_hit",
            {"Assignments": listed},
            {"HITId": hit.remote_id, "MaxResults": 100, "AssignmentStatuses": ANY},
        )
    assert crowd_sync_all.delay().get() == 1  # eager in tests: the per-campaign task runs at once
    assert Answer.objects.get(pk=answer.pk).review == "approved"
    assert Campaign.objects.get(pk=campaign.pk).synced_at is not None
    assert app.conf.beat_schedule["crowd-sync"]["task"] == "annotator.crowd_sync_all"
