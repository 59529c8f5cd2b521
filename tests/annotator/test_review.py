"""A reviewer's decisions: accept, override, send back, reject. The crowd's values stay beside the
reviewer's, every action is recorded with who and when, a rejected answer leaves the aggregation,
and on Mechanical Turk the matching call is made first (botocore's Stubber against MTurk's model)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotator import selectors
from annotator.models import Answer, Campaign, Hit, ReviewAction, UnitLabel, Worker
from annotator.services import export, review
from annotator.services.assignments import assignment_claim
from tests.factories import answer_hit, as_mturk_answer, concept_network

pytestmark = pytest.mark.django_db
ALICE = review.Reviewer("alice")


@pytest.fixture
def hits(world_dir) -> dict[str, Hit]:
    concept_network(world_dir, concepts=("car", "house", "tree"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--images-per-hit", "20")
    call_command("publish", "c", "--backend", "local")
    return {name: Hit.objects.get(campaign__name="c", unit__index=i) for i, name in enumerate(("car", "house", "tree"))}


def label_of(hit: Hit) -> UnitLabel:
    return UnitLabel.objects.get(unit_id=hit.unit_id)


def test_accept_pins_the_crowds_values_and_settles_a_split(hits) -> None:
    car = hits["car"]
    answer_hit(car, "w1", "car", "object")
    answer_hit(car, "w2", "cars", "part")
    answer_hit(car, "w3", "a car", "region")
    assert label_of(car).status == "needs_review"  # a detector whose category has no majority
    review.unit_accept(unit_id=car.unit_id, reviewer=ALICE)
    label = label_of(car)
    assert (label.review_label, label.review_status, label.reviewed_by) == ("car", "detector", "alice")
    assert label.reviewed_at is not None and label.status == "needs_review"  # the crowd's value stays beside
    action = ReviewAction.objects.get()
    assert (action.actor, action.action, action.unit_id) == ("alice", "accept", car.unit_id)


def test_a_unit_waiting_for_answers_cannot_be_accepted(hits) -> None:
    answer_hit(hits["car"], "w1", "car", "object")
    with pytest.raises(review.ReviewError, match="waits for answers"):
        review.unit_accept(unit_id=hits["car"].unit_id, reviewer=ALICE)
    with pytest.raises(review.ReviewError, match="no answers yet"):
        review.unit_accept(unit_id=hits["house"].unit_id, reviewer=ALICE)
    assert not ReviewAction.objects.exists()


def test_override_is_kept_beside_the_crowd_and_wins_in_exports(hits) -> None:
    house = hits["house"]
    for worker in ("w1", "w2", "w3"):
        answer_hit(house, worker, "building", "object")
    review.unit_override(unit_id=house.unit_id, reviewer=ALICE, label="  house ", category="object")
    label = label_of(house)
    assert (label.label, label.review_label, label.final_label) == ("building", "house", "house")
    record = next(r for r in export.unit_records("world") if r["unit"] == 1)
    assert record["label"] == "house"
    # Aggregating again recomputes the crowd's side only.
    call_command("aggregate", "--network", "world")
    assert label_of(house).review_label == "house"
    with pytest.raises(review.ReviewError, match="Unknown category"):
        review.unit_override(unit_id=house.unit_id, reviewer=ALICE, category="animal")
    with pytest.raises(review.ReviewError, match="Give a label"):
        review.unit_override(unit_id=house.unit_id, reviewer=ALICE)
    assert ReviewAction.objects.filter(action="override").count() == 1


def test_send_back_asks_for_more_answers_from_new_workers(hits) -> None:
    tree = hits["tree"]
    for worker in ("w1", "w2", "w3"):
        answer_hit(tree, worker, "tree", "object")
    assert label_of(tree).status == "detector"
    assert tree not in selectors.hits_available()
    review.unit_accept(unit_id=tree.unit_id, reviewer=ALICE)
    review.unit_send_back(unit_id=tree.unit_id, reviewer=ALICE, more=2)
    label = label_of(tree)
    assert (label.status, label.answers, label.answers_needed, label.review_status) == ("pending", 3, 5, "")
    # The three who answered never get it again; two others do, and then it is complete.
    for worker in ("w1", "w2", "w3"):
        claimed = assignment_claim(worker=Worker.objects.get(external_id=worker))
        assert claimed is None or claimed.hit_id != tree.pk
    answer_hit(tree, "w4", "tree", "object")
    answer_hit(tree, "w5", "trees", "object")
    assert (label_of(tree).status, label_of(tree).answers) == ("detector", 5)
    assert selectors.campaign_counts(tree.campaign)["needed"] == 3 * 3 + 2


def test_imported_units_cannot_be_sent_back(tmp_path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("network,layer,unit,worker,description,category,precision\nn,conv3,0,w1,car,object,0.9\n")
    call_command("import_annotations", str(path), "--network", "n")
    unit_id = UnitLabel.objects.get().unit_id
    with pytest.raises(review.ReviewError, match="in no published campaign"):
        review.unit_send_back(unit_id=unit_id, reviewer=ALICE)


def test_rejecting_a_local_answer_drops_it_and_reopens_its_slot(hits) -> None:
    car = hits["car"]
    good = [answer_hit(car, w, "car", "object") for w in ("w1", "w2")]
    spam = answer_hit(car, "w3", "asdf", "scene", wrong=17)
    assert label_of(car).precision == pytest.approx((1 + 1 + 0) / 3)
    review.answer_reject(answer_id=spam.pk, reviewer=ALICE, feedback="The images show cars, not 'asdf'.")
    spam.refresh_from_db()
    assert (spam.review, spam.feedback) == ("rejected", "The images show cars, not 'asdf'.")
    label = label_of(car)
    assert (label.answers, label.status, label.precision) == (2, "pending", 1.0)
    assert car in selectors.hits_available()  # the slot went back to the pool
    answer_hit(car, "w4", "car", "object")
    assert (label_of(car).status, label_of(car).answers) == ("detector", 3)
    # Rejecting again changes nothing; the record names who did it and what the worker was told.
    review.answer_reject(answer_id=spam.pk, reviewer=ALICE, feedback="again")
    action = ReviewAction.objects.get(action="reject")
    assert (action.actor, action.answer_id, action.worker_id, action.details["feedback"]) == (
        "alice",
        spam.pk,
        spam.worker_id,
        "The images show cars, not 'asdf'.",
    )
    assert all(Answer.objects.get(pk=a.pk).review == "submitted" for a in good)
    with pytest.raises(review.ReviewError, match="Say why"):
        review.answer_reject(answer_id=good[0].pk, reviewer=ALICE, feedback="  ")


def mturk_answer(hit: Hit, worker: str = "A1WORKER") -> Answer:
    Campaign.objects.filter(pk=hit.campaign_id).update(platform="mturk", environment="sandbox")
    Hit.objects.filter(pk=hit.pk).update(remote_id="3HITID")
    hit.refresh_from_db()
    return as_mturk_answer(answer_hit(hit, worker, "car", "object"), "3ASSIGNMENT")


def test_rejecting_an_mturk_answer_rejects_the_assignment_there(hits, stubbed_mturk) -> None:
    answer = mturk_answer(hits["car"])
    stubbed_mturk.add_response(
        "reject_assignment", {}, {"AssignmentId": "3ASSIGNMENT", "RequesterFeedback": "Gold images were not marked."}
    )
    review.answer_reject(answer_id=answer.pk, reviewer=ALICE, feedback="Gold images were not marked.")
    assert Answer.objects.get(pk=answer.pk).review == "rejected"


def test_a_refused_mturk_call_changes_nothing(hits, stubbed_mturk) -> None:
    answer = mturk_answer(hits["car"])
    stubbed_mturk.add_client_error(
        "reject_assignment",
        service_error_code="RequestError",
        http_status_code=400,
        service_message="This operation can be called with a status of: Submitted",
    )
    with pytest.raises(review.ReviewError, match="refused RejectAssignment: This operation can be called"):
        review.answer_reject(answer_id=answer.pk, reviewer=ALICE, feedback="no")
    assert Answer.objects.get(pk=answer.pk).review == "submitted"
    assert not ReviewAction.objects.exists()


def test_sending_back_an_mturk_unit_adds_assignments_there(hits, stubbed_mturk) -> None:
    hit = hits["car"]
    mturk_answer(hit)
    stubbed_mturk.add_response(
        "create_additional_assignments_for_hit",
        {},
        {"HITId": "3HITID", "NumberOfAdditionalAssignments": 2, "UniqueRequestToken": f"more-{hit.key.hex}-2"},
    )
    review.unit_send_back(unit_id=hit.unit_id, reviewer=ALICE, more=2)
    assert Hit.objects.get(pk=hit.pk).extra_answers == 2


def test_send_back_keeps_the_override_and_asks_which_campaign(hits, client) -> None:
    from django.contrib.auth import get_user_model

    tree = hits["tree"]
    for worker in ("w1", "w2", "w3"):
        answer_hit(tree, worker, "tree", "object")
    review.unit_override(unit_id=tree.unit_id, reviewer=ALICE, label="cottage", category="object")
    call_command("create_campaign", "again", "--network", "world", "--layers", "conv3", "--images-per-hit", "20")
    call_command("publish", "again", "--backend", "local")
    with pytest.raises(review.ReviewError, match=r"is in several campaigns \(again, c\): choose"):
        review.unit_send_back(unit_id=tree.unit_id, reviewer=ALICE, more=2)
    hit = review.unit_send_back(unit_id=tree.unit_id, reviewer=ALICE, more=2, campaign="c")
    assert hit.pk == tree.pk and hit.extra_answers == 2, "the campaign asked for, not the newest"
    label = label_of(tree)
    assert (label.review_label, label.review_category, label.final_label) == ("cottage", "object", "cottage")
    assert label.status == "pending"
    action = ReviewAction.objects.filter(action="send_back").get()
    assert action.details["override kept"] == {"label": "cottage", "category": "object"}
    # The page offers the choice and says what will happen before it happens.
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(staff)
    page = client.get(f"/dashboard/unit/{tree.unit_id}/").content.decode()
    assert '<select name="campaign" id="send-back-campaign" required>' in page
    assert "your override (cottage, Object) stays" in page
