"""The staff dashboard over HTTP (Django's test client): staff only, the unit grid's sorting and
filtering, a unit's page and its review actions, campaign money and worker quality, figures."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotator.models import Answer, Campaign, Hit, Layer, Network, Unit, UnitLabel
from mturk.fees import assignment_cost
from tests.factories import answer_hit, concept_network

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(world_dir) -> dict[str, Hit]:
    """car: a clean detector; house: split categories; tree: a non-detector; boat: pending."""
    concept_network(world_dir, concepts=("car", "house", "tree", "boat"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--images-per-hit", "20")
    call_command("publish", "c", "--backend", "local")
    hits = {
        name: Hit.objects.get(campaign__name="c", unit__index=i)
        for i, name in enumerate(("car", "house", "tree", "boat"))
    }
    for worker, seconds in (("w1", 20), ("w2", 40), ("w3", 90)):
        answer_hit(hits["car"], worker, "car", "object", wrong=1, seconds=seconds)
    answer_hit(hits["house"], "w1", "house", "object", seconds=30)
    answer_hit(hits["house"], "w2", "houses", "scene", seconds=30)
    answer_hit(hits["house"], "w3", "a house", "part", seconds=30)
    answer_hit(hits["tree"], "w1", "tree", "object", wrong=17, gold=False, seconds=5)  # marks everything
    answer_hit(hits["tree"], "w2", "green", "color", wrong=8, seconds=30)
    answer_hit(hits["tree"], "w4", "tree", "object", wrong=0, gold=False, seconds=3)  # marks nothing
    answer_hit(hits["boat"], "w1", "boat", "object")
    return hits


@pytest.fixture
def staff() -> Client:
    user = get_user_model().objects.create_user("reviewer", password="pw", is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=["reviewer", "paymaster"]))
    client = Client()
    client.force_login(user)
    return client


def urls(world: dict[str, Hit]) -> list[str]:
    layer = Layer.objects.get(network__name="world")
    unit = world["car"].unit_id
    return [
        reverse("dashboard"),
        reverse("dashboard-layer", args=[layer.pk]),
        reverse("dashboard-netdissect", args=[layer.pk]),
        reverse("dashboard-unit", args=[unit]),
        reverse("dashboard-campaign", args=[world["car"].campaign_id]),
        reverse("dashboard-figures", args=[layer.network_id]),
        reverse("dashboard-figure", args=[layer.network_id, "types", "png"]),
    ]


def test_only_staff_see_the_dashboard(world, staff) -> None:
    outsider = Client()
    outsider.force_login(get_user_model().objects.create_user("annotator", password="pw"))
    for url in urls(world):
        for client in (Client(), outsider):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
        assert staff.get(url).status_code == 200, url
    # Nor may anyone else act.
    answer = Answer.objects.filter(unit_id=world["car"].unit_id).first()
    for client in (Client(), outsider):
        client.post(reverse("dashboard-unit-review", args=[world["car"].unit_id]), {"action": "accept"})
        client.post(reverse("dashboard-answer-reject", args=[answer.pk]), {"feedback": "x"})
    assert UnitLabel.objects.get(unit_id=world["car"].unit_id).review_status == ""
    assert Answer.objects.get(pk=answer.pk).review == "submitted"


def card_units(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'class="unit-card[^"]*"[^>]*data-unit="(\d+)"', html)]


def test_the_grid_sorts_and_filters(world, staff) -> None:
    url = reverse("dashboard-layer", args=[Layer.objects.get(network__name="world").pk])
    assert card_units(staff.get(url).content.decode()) == [0, 1, 2, 3]
    # Precision: house 1.0, car 16/17, tree low; boat is pending but has a precision too.
    by_precision = card_units(staff.get(url, {"sort": "precision", "order": "desc"}).content.decode())
    labels = {u.unit.index: u.precision for u in UnitLabel.objects.select_related("unit")}
    assert by_precision == sorted(labels, key=lambda i: -labels[i])
    assert card_units(staff.get(url, {"status": "needs_review"}).content.decode()) == [1]
    assert card_units(staff.get(url, {"status": "pending"}).content.decode()) == [3]
    assert card_units(staff.get(url, {"q": "Cars"}).content.decode()) == [0]
    assert card_units(staff.get(url, {"category": "object", "sort": "label"}).content.decode()) == [3, 0, 2]
    at_least = sorted(i for i, p in labels.items() if p >= 0.9)
    assert card_units(staff.get(url, {"min_precision": "0.9"}).content.decode()) == at_least
    assert card_units(staff.get(url, {"min_agreement": "1", "min_precision": "x"}).content.decode()) == [0, 3]
    page = staff.get(url).content.decode()
    assert '<span class="badge needs_review">needs review</span>' in page, "status names in words"
    assert ">needs_review<" not in page and ">not_detector<" not in page
    assert "RF of unit 0" not in page  # the factory's units have no RF picture
    thumbs = re.findall(r'src="(/dashboard/media/[^"]+)"', page)
    assert len(thumbs) == 4 * 6
    image = staff.get(thumbs[0])
    assert image.status_code == 200 and b"".join(image.streaming_content)[:3] == b"\xff\xd8\xff"


def test_media_stays_inside_the_artifact_store(world, staff) -> None:
    assert staff.get("/dashboard/media/../../etc/passwd").status_code == 404
    assert staff.get("/dashboard/media/test/world/0/missing.jpg").status_code == 404
    assert Client().get("/dashboard/media/test/world/0/000.jpg").status_code == 302


def test_unit_page_review_actions(world, staff) -> None:
    house = world["house"]
    url = reverse("dashboard-unit", args=[house.unit_id])
    page = staff.get(url).content.decode()
    assert page.count('class="answer ') == 3 and "category split" in page
    review_url = reverse("dashboard-unit-review", args=[house.unit_id])
    response = staff.post(review_url, {"action": "override", "label": "house", "category": "object"}, follow=True)
    assert "kept beside the crowd" in response.content.decode()
    label = UnitLabel.objects.get(unit_id=house.unit_id)
    assert (label.review_label, label.review_category, label.review_status, label.reviewed_by) == (
        "house",
        "object",
        "detector",
        "reviewer",
    )
    assert "reviewer</b> override" in staff.get(url).content.decode()
    # A refused action says why and changes nothing.
    response = staff.post(review_url, {"action": "send_back", "more": "50"}, follow=True)
    assert "between 1 and 20" in response.content.decode()
    response = staff.post(
        reverse("dashboard-unit-review", args=[world["boat"].unit_id]), {"action": "accept"}, follow=True
    )
    assert "still waits for answers" in response.content.decode()
    # Reject an answer: it leaves the label, and the page shows it rejected with the feedback.
    answer = Answer.objects.filter(unit_id=house.unit_id, worker__external_id="w2").get()
    response = staff.post(
        reverse("dashboard-answer-reject", args=[answer.pk]),
        {"feedback": "Scene is not the category of 'houses'."},
        follow=True,
    )
    html = response.content.decode()
    assert f'id="answer-{answer.pk}" class="answer rejected"' in html and "Scene is not the category" in html
    assert response.redirect_chain[-1][0].endswith(f"#answer-{answer.pk}"), "the page opens at the answer"
    confirmation = f"Answer {answer.pk} is rejected and left out of the unit&#x27;s label."
    row_start = html.index('<tr class="row-message">')
    assert html.index(confirmation) > row_start and html.index(confirmation) < html.index(f'id="answer-{answer.pk}"'), (
        "the confirmation stands in the answer's table, just above its row"
    )
    assert html.count(confirmation) == 1
    assert UnitLabel.objects.get(unit_id=house.unit_id).answers == 2
    response = staff.post(review_url, {"action": "send_back", "more": "1"}, follow=True)
    assert "now wants 4 answers" in response.content.decode()


def test_campaign_page_shows_progress_money_and_worker_quality(world, staff) -> None:
    campaign = Campaign.objects.get(name="c")
    html = staff.get(reverse("dashboard-campaign", args=[campaign.pk])).content.decode()
    assert "HITs done <b>3 / 4</b>" in html and "answers that count <b>10 / 12</b>" in html and ">83%<" in html
    assert "Local annotators: no money spent" in html
    rows = {
        cells[0]: cells
        for cells in (
            re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r'<tr class="worker-row">(.*?)</tr>', html, re.S)
        )
    }
    # w1: 4 answers, gold passed in 3 (the tree answer left gold unmarked), marked every image of tree once.
    assert rows["w1"][2] == "4" and rows["w1"][4].startswith("3/4") and rows["w1"][7] == "1"
    assert rows["w4"][6] == "1" and rows["w4"][8] == "3 s"  # marked nothing, in 3 seconds
    # The same campaign on MTurk: what approved and submitted assignments cost with the commission.
    Campaign.objects.filter(pk=campaign.pk).update(platform="mturk", environment="sandbox")
    Answer.objects.filter(hit__campaign=campaign, worker__external_id="w1").update(review="approved")
    html = staff.get(reverse("dashboard-campaign", args=[campaign.pk])).content.decode()
    each = assignment_cost(Decimal("0.10"), 3)
    assert f"Spent ${each * 4} on 4 approved" in html and f"${each * 6} owed on 6" in html


def test_index_lists_layers_campaigns_and_progress(world, staff) -> None:
    html = staff.get(reverse("dashboard")).content.decode()
    assert 'data-layer="conv3"' in html and ">83%<" in html and "world" in html


def test_figures_download_as_png_and_svg(world, staff) -> None:
    network = Network.objects.get(name="world")
    png = staff.get(reverse("dashboard-figure", args=[network.pk, "types", "png"]), {"download": "1"})
    assert png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert png["Content-Disposition"] == 'attachment; filename="world_types.png"'
    svg = staff.get(reverse("dashboard-figure", args=[network.pk, "objects", "svg"]))
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content and "Content-Disposition" not in svg
    assert staff.get(reverse("dashboard-figure", args=[network.pk, "other", "png"])).status_code == 404
    page = staff.get(reverse("dashboard-figures", args=[network.pk])).content.decode()
    assert "objects.png?download=1" in page and "types.svg?download=1" in page
    assert Unit.objects.filter(layer__network=network).count() == 4


def test_mturk_actions_from_the_dashboard(world, staff, stubbed_mturk) -> None:
    """Approve, bonus, block, review by rule, sync and HIT changes, each a post that calls MTurk."""
    from botocore.stub import ANY

    from annotator.models import Assignment, Bonus, ReviewAction, Worker

    campaign = Campaign.objects.get(name="c")
    Campaign.objects.filter(pk=campaign.pk).update(platform="mturk", environment="sandbox")
    for hit in Hit.objects.filter(campaign=campaign):
        Hit.objects.filter(pk=hit.pk).update(remote_id=f"3HIT{hit.unit.index:026d}")
    Answer.objects.update(source="mturk")
    for assignment in Assignment.objects.all():
        Assignment.objects.filter(pk=assignment.pk).update(external_id=f"A{assignment.pk}")
    car = Answer.objects.filter(unit_id=world["car"].unit_id).order_by("id")
    first, second = car[0], car[1]
    stubbed_mturk.add_response(
        "approve_assignment", {}, {"AssignmentId": f"A{first.assignment_id}", "OverrideRejection": False}
    )
    response = staff.post(reverse("dashboard-answer-approve", args=[first.pk]), follow=True)
    assert "approved and paid" in response.content.decode()
    stubbed_mturk.add_response(
        "send_bonus",
        {},
        {
            "WorkerId": second.worker.external_id,
            "BonusAmount": "0.30",
            "AssignmentId": f"A{second.assignment_id}",
            "Reason": "Thorough",
            "UniqueRequestToken": ANY,
        },
    )
    staff.post(reverse("dashboard-answer-bonus", args=[second.pk]), {"amount": "0.3", "reason": "Thorough"})
    assert Bonus.objects.get().paid
    html = staff.get(reverse("dashboard-campaign", args=[campaign.pk])).content.decode()
    # One approved assignment ($0.12) plus a $0.30 bonus with its 20% ($0.06).
    assert "Spent $0.48 on 1 approved assignment and $0.36 in bonuses" in html

    w4 = Worker.objects.get(external_id="w4")
    Worker.objects.filter(pk=w4.pk).update(kind="mturk", environment="sandbox")
    stubbed_mturk.add_response("create_worker_block", {}, {"WorkerId": "w4", "Reason": "Marks nothing"})
    staff.post(
        reverse("dashboard-worker", args=[w4.pk]),
        {"action": "block", "reason": "Marks nothing", "next": reverse("dashboard-campaign", args=[campaign.pk])},
    )
    assert Worker.objects.get(pk=w4.pk).blocked

    action = reverse("dashboard-campaign-action", args=[campaign.pk])
    response = staff.post(
        action,
        {"action": "review", "rules": ["gold-failed", "too-fast"], "feedback": "Mark gold", "preview": "1"},
        follow=True,
    )
    html = response.content.decode()
    assert "2 answers would be rejected and 0 approved (preview: nothing changed)" in html
    assert 'value="gold-failed" checked' in html and 'value="Mark gold"' in html  # the form is kept
    assert not Answer.objects.filter(review="rejected").exists()
    for _ in range(2):
        stubbed_mturk.add_response("reject_assignment", {}, {"AssignmentId": ANY, "RequesterFeedback": ANY})
    staff.post(action, {"action": "review", "rules": ["gold-failed", "too-fast"], "feedback": "Mark gold"})
    assert set(Answer.objects.filter(review="rejected").values_list("worker__external_id", flat=True)) == {"w1", "w4"}
    response = staff.post(action, {"action": "review", "rules": ["empty"]}, follow=True)
    html = response.content.decode()
    assert "Write the feedback" in html and 'value="empty" checked' in html, "a refusal keeps the ticked rules"
    preview = staff.post(action, {"action": "review", "rules": ["nonsense"], "preview": "1"}, follow=True)
    assert "(preview: nothing changed)" in preview.content.decode(), "a preview needs no feedback"
    campaign_page = staff.get(reverse("dashboard-campaign", args=[campaign.pk])).content.decode()
    assert campaign_page.count("data-confirm=") == 2, "expire and delete ask first"

    for hit in Hit.objects.filter(campaign=campaign):
        stubbed_mturk.add_response("update_expiration_for_hit", {}, {"HITId": hit.remote_id, "ExpireAt": ANY})
    response = staff.post(action, {"action": "extend", "hours": "12"}, follow=True)
    assert "extend: 4 HITs." in response.content.decode()
    actions = set(ReviewAction.objects.values_list("actor", "action"))
    assert {("reviewer", a) for a in ("approve", "bonus", "block", "reject", "extend")} <= actions


def test_the_unit_page_steps_through_the_grids_filter_in_its_order(world, staff) -> None:
    layer = Layer.objects.get(network__name="world")
    query = "sort=precision&order=desc"
    grid = staff.get(f"{reverse('dashboard-layer', args=[layer.pk])}?{query}").content.decode()
    order = [int(pk) for pk in re.findall(r'href="/dashboard/unit/(\d+)/\?sort=precision&amp;order=desc"', grid)]
    assert len(order) == 4, "each card links to its unit page with the filter"
    first = staff.get(f"/dashboard/unit/{order[0]}/?{query}").content.decode()
    assert 'id="previous-unit"' not in first
    assert f'href="/dashboard/unit/{order[1]}/?{query.replace("&", "&amp;")}"' in first
    assert "1 of 4 in this filter" in first
    last = staff.get(f"/dashboard/unit/{order[-1]}/?{query}").content.decode()
    assert 'id="next-unit"' not in last and f"/dashboard/unit/{order[-2]}/" in last
    split = UnitLabel.objects.get(unit__layer=layer, status="needs_review").unit_id
    only_review = staff.get(f"/dashboard/unit/{split}/?status=needs_review").content.decode()
    assert "1 of 1 in this filter" in only_review and 'id="next-unit"' not in only_review


def test_cards_count_answers_per_campaign(world, staff) -> None:
    call_command(
        "create_campaign",
        "second",
        "--network",
        "world",
        "--layers",
        "conv3",
        "--images-per-hit",
        "20",
        "--answers-per-unit",
        "2",
    )
    call_command("publish", "second", "--backend", "local")
    answer_hit(Hit.objects.get(campaign__name="second", unit__index=0), "w9", "car", "object")
    grid = staff.get(reverse("dashboard-layer", args=[Layer.objects.get(network__name="world").pk])).content.decode()
    car = grid[grid.index('data-unit="0"') : grid.index('data-unit="1"')]
    assert "c 3/3 answers" in car and "second 1/2 answers" in car and "4/3" not in car
    boat = grid[grid.index('data-unit="3"') :]
    assert "c 1/3 answers" in boat and "second 0/2 answers" in boat


def test_messages_name_the_units_own_number_and_layer_and_counts_read_as_words(world, staff) -> None:
    car, boat, house = world["car"], world["boat"], world["house"]
    page = staff.get(reverse("dashboard-unit", args=[car.unit_id])).content.decode()
    assert '<td id="answer-count">3 answers (3 needed)</td>' in page
    assert page.index('id="answers"') < page.index('id="top-images"'), "the answers first, the evidence decided on"
    assert '<details class="card" id="top-images">' in page, "the top images folded"
    accepted = staff.post(reverse("dashboard-unit-review", args=[car.unit_id]), {"action": "accept"}, follow=True)
    text = accepted.content.decode()
    assert "conv3 unit 0: the crowd&#x27;s label is accepted." in text and f"Unit {car.unit_id}:" not in text
    waiting = staff.post(reverse("dashboard-unit-review", args=[boat.unit_id]), {"action": "accept"}, follow=True)
    assert "conv3 unit 3 still waits for answers" in waiting.content.decode()
    # "to review" on the start page opens those units.
    index = staff.get(reverse("dashboard")).content.decode()
    link = re.search(r'<a class="to-review" href="([^"]+)">(\d+)</a>', index)
    assert link is not None and link.group(1).endswith("?status=needs_review")
    grid = staff.get(link.group(1).replace("&amp;", "&")).content.decode()
    shown = re.findall(r'data-unit="(\d+)" data-precision', grid)
    assert len(shown) == int(link.group(2)) and str(house.unit.index) in shown


def test_every_review_action_keeps_the_grids_filter_and_order(world, staff) -> None:
    house, car = world["house"], world["car"]
    grid = "sort=precision&order=desc&status=detector&nonsense=1"
    response = staff.post(
        reverse("dashboard-unit-review", args=[house.unit_id]),
        {"action": "override", "label": "house", "category": "object", "grid": grid},
    )
    assert (
        response["Location"]
        == reverse("dashboard-unit", args=[house.unit_id]) + "?sort=precision&order=desc&status=detector"
    )
    page = staff.get(response["Location"]).content.decode()
    assert 'name="grid" value="sort=precision&amp;order=desc&amp;status=detector"' in page, "the next form carries it"
    answer = Answer.objects.filter(unit_id=car.unit_id).first()
    rejected = staff.post(reverse("dashboard-answer-reject", args=[answer.pk]), {"feedback": "no", "grid": grid})
    assert rejected["Location"].endswith(f"?sort=precision&order=desc&status=detector#answer-{answer.pk}")
