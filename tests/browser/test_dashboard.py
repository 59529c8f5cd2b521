"""The staff dashboard in real Chromium: signing in through the admin login, staff-only access, the
unit grid's sort and filter controls, a review by override and by rejecting an answer, and figure
downloads."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from annotator.models import Answer, Campaign, Hit, Layer, Network, UnitLabel
from annotator.selectors import is_object_detector
from tests.browser.test_hit_form import screenshot
from tests.factories import answer_hit, concept_network, put_on_mturk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def layer(world_dir) -> Layer:
    concepts = ("car", "house", "tree", "boat", "sky", "wheel")
    concept_network(world_dir, concepts=concepts)
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--images-per-hit", "20")
    call_command("publish", "c", "--backend", "local")
    hits = {name: Hit.objects.get(campaign__name="c", unit__index=i) for i, name in enumerate(concepts)}
    for i, worker in enumerate(("w1", "w2", "w3")):
        answer_hit(hits["car"], worker, "car", "object", wrong=i)
        answer_hit(hits["house"], worker, ("house", "building", "house")[i], ("object", "scene", "part")[i])
        answer_hit(hits["tree"], worker, "green", "color", wrong=6 + i)
        answer_hit(hits["sky"], worker, "sky", "region", wrong=1)
    answer_hit(hits["boat"], "w1", "boat", "object")
    reviewer = get_user_model().objects.create_user("reviewer", password="review-pw-1", is_staff=True)
    reviewer.groups.add(*Group.objects.filter(name__in=["reviewer", "paymaster"]))
    get_user_model().objects.create_user("annotator", password="annot-pw-1")
    return Layer.objects.get(network__name="world")


def sign_in(page, live_server, username: str, password: str, next_url: str) -> None:
    page.goto(f"{live_server.url}{next_url}")
    assert "/admin/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def grid_units(page) -> list[int]:
    return [int(n) for n in page.locator(".unit-card").evaluate_all("cards => cards.map(c => c.dataset.unit)")]


def test_a_non_staff_account_cannot_open_the_dashboard(page, live_server, layer) -> None:
    sign_in(page, live_server, "annotator", "annot-pw-1", "/dashboard/")
    assert "/admin/login/" in page.url
    assert "for a staff account" in page.content()  # the admin login refuses non-staff accounts
    page.goto(f"{live_server.url}/dashboard/layer/{layer.pk}/")
    assert "/admin/login/" in page.url and page.locator(".unit-card").count() == 0


def test_a_reviewer_sorts_filters_overrides_and_rejects(page, live_server, layer) -> None:
    sign_in(page, live_server, "reviewer", "review-pw-1", "/dashboard/")
    assert page.url.endswith("/dashboard/")
    page.click("text=conv3")
    assert grid_units(page) == [0, 1, 2, 3, 4, 5]
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    page.select_option("#sort", "precision")
    page.select_option("#order", "desc")
    page.click("#grid-filter button[type=submit]")
    precisions = {label.unit.index: label.precision for label in UnitLabel.objects.select_related("unit")}
    expected = sorted(precisions, key=lambda i: (-precisions[i], i)) + sorted(set(range(6)) - set(precisions))
    assert grid_units(page) == expected
    page.select_option("#status", "needs_review")
    page.click("#grid-filter button[type=submit]")
    assert grid_units(page) == [1] and page.locator("#sort").input_value() == "precision"  # choices kept

    page.click(".unit-card[data-unit='1']")
    assert page.locator("#crowd-label").inner_text() == "house"
    page.fill("#override-label", "house")
    page.select_option("#override-category", "object")
    page.click("#override")
    assert page.locator("#review-category").inner_text() == "Object"
    assert page.locator("#review-status").inner_text() == "detector"
    assert "reviewer override" in page.locator("#history").inner_text()

    row = page.locator("tr.answer", has_text="building")
    row.locator("input[name=feedback]").fill("A building is not a scene.")
    row.locator("button", has_text="Reject").click()
    assert page.locator("tr.answer.rejected", has_text="building").is_visible()
    assert "A building is not a scene." in page.locator("tr.answer.rejected").inner_text()
    rejected = Answer.objects.get(description="building")
    assert (rejected.review, rejected.feedback) == ("rejected", "A building is not a scene.")
    assert UnitLabel.objects.get(unit__index=1).answers == 2


def test_figures_download(page, live_server, layer, tmp_path) -> None:
    sign_in(page, live_server, "reviewer", "review-pw-1", f"/dashboard/network/{layer.network_id}/figures/")
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    with page.expect_download() as download:
        page.click("#figure-types >> text=PNG")
    path = tmp_path / "types.png"
    download.value.save_as(path)
    assert download.value.suggested_filename == "world_types.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as download:
        page.click("#figure-objects >> text=SVG")
    assert download.value.suggested_filename == "world_objects.svg"
    assert Network.objects.filter(name="world").exists()


def test_each_answer_is_shown_as_its_worker_saw_it(page, live_server, layer, tmp_path) -> None:
    unit = Hit.objects.get(campaign__name="c", unit__index=0).unit
    sign_in(page, live_server, "reviewer", "review-pw-1", f"/dashboard/unit/{unit.pk}/")
    answer = Answer.objects.get(unit=unit, worker__external_id="w3")  # two of its own images marked
    slots = list(answer.hit.slots.order_by("position"))
    seen = page.locator(f"#seen-{answer.pk}")
    seen.locator("summary").click()
    figures = seen.locator("figure.seen")
    assert figures.count() == len(slots)
    marked = [int(n) for n in seen.locator("figure.seen.marked").evaluate_all("fs => fs.map(f => f.dataset.number)")]
    gold = [int(n) for n in seen.locator("figure.seen.gold").evaluate_all("fs => fs.map(f => f.dataset.number)")]
    assert marked == [i for i, s in enumerate(slots, start=1) if s.position in answer.marked]
    assert gold == [i for i, s in enumerate(slots, start=1) if s.gold] and set(gold) <= set(marked)
    assert len(set(marked) - set(gold)) == 2, "the two unit images it marked show as marked, gold apart"
    assert f"{answer.gold_marked} of {answer.gold_total} gold" in seen.locator("summary").inner_text()
    # The pictures are the ones the HIT showed, in its order.
    first = seen.locator("figure.seen img").first
    first.scroll_into_view_if_needed()
    page.wait_for_function(f"document.querySelector('#seen-{answer.pk} figure.seen img').naturalWidth > 0")
    assert first.get_attribute("src").endswith(slots[0].top_image.segmentation.rendered_path)
    seen.locator("figure.seen").last.scroll_into_view_if_needed()
    page.wait_for_function(f"[...document.querySelectorAll('#seen-{answer.pk} img')].every(i => i.complete)")
    broken = seen.locator("img").evaluate_all("is => is.filter(i => i.naturalWidth === 0).map(i => i.alt)")
    assert broken == [], "every image the worker saw is shown, gold ones too"
    screenshot(page, "dashboard-answer-marks.png", tmp_path)


def test_previous_and_next_follow_the_filter(page, live_server, layer) -> None:
    sign_in(page, live_server, "reviewer", "review-pw-1", f"/dashboard/layer/{layer.pk}/")
    page.select_option("#sort", "precision")
    page.click("#grid-filter button[type=submit]")
    order = grid_units(page)
    page.click(f".unit-card[data-unit='{order[0]}']")
    assert "1 of 6 in this filter" in page.locator("#unit-steps").inner_text()
    assert page.locator("#previous-unit").count() == 0
    page.click("#next-unit")
    assert page.locator("h1").inner_text().endswith(f"unit {order[1]}")
    page.click("#previous-unit")
    assert page.locator("h1").inner_text().endswith(f"unit {order[0]}")


def test_an_answer_action_confirms_in_the_answers_row(page, live_server, layer) -> None:
    unit = Hit.objects.get(campaign__name="c", unit__index=1).unit
    page.set_viewport_size({"width": 1366, "height": 600})
    sign_in(page, live_server, "reviewer", "review-pw-1", f"/dashboard/unit/{unit.pk}/")
    answer = Answer.objects.get(unit=unit, description="building")
    row = page.locator(f"#answer-{answer.pk}")
    row.scroll_into_view_if_needed()
    row.locator("input[name=feedback]").fill("A building is not a scene.")
    row.locator("button", has_text="Reject").click()
    page.wait_for_load_state()
    message = page.locator("tr.row-message", has_text="ejected")
    assert message.count() == 1
    box = message.bounding_box()
    assert page.evaluate("window.scrollY") > 0, "the page opens at the answer, not at its top"
    assert box["y"] >= 0 and box["y"] + box["height"] <= 600, "the confirmation is in view"
    assert page.locator(f"#answer-{answer.pk}").evaluate("r => r.previousElementSibling.className") == "row-message"


def test_status_names_read_as_words_and_cards_count_per_campaign(page, live_server, layer) -> None:
    call_command(
        "create_campaign",
        "more",
        "--network",
        "world",
        "--layers",
        "conv3",
        "--images-per-hit",
        "20",
        "--answers-per-unit",
        "2",
    )
    sign_in(page, live_server, "reviewer", "review-pw-1", f"/dashboard/layer/{layer.pk}/")
    badges = page.locator(".unit-card .badge").all_inner_texts()
    assert "needs review" in badges and not any("_" in text for text in badges)
    counts = page.locator(".unit-card[data-unit='0'] .campaign-count").all_inner_texts()
    assert counts == ["c 3/3 answers", "more 0/2 answers"]


def test_expire_and_delete_ask_first(page, live_server, layer) -> None:
    call_command("create_campaign", "t", "--network", "world", "--layers", "conv3", "--images-per-hit", "20")
    put_on_mturk("t")
    campaign = Campaign.objects.get(name="t")
    sign_in(page, live_server, "reviewer", "review-pw-1", f"/dashboard/campaign/{campaign.pk}/")
    asked, posts = [], []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.click("button:has-text('Expire HITs')")
    page.click("button:has-text('Delete reviewed HITs')")
    page.wait_for_timeout(300)
    assert len(asked) == 2 and "Expire every HIT of t" in asked[0] and "cannot be undone" in asked[1]
    assert posts == [], "declining sends nothing to the server"


def test_a_histogram_bar_opens_its_units(page, live_server, layer, tmp_path) -> None:
    sign_in(page, live_server, "reviewer", "review-pw-1", f"/dashboard/network/{layer.network_id}/figures/")
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    screenshot(page, "dashboard-figures.png", tmp_path, full_page=True)
    bars = page.locator("#figure-objects .histogram a")
    expected = {label.final_label for label in UnitLabel.objects.all() if is_object_detector(label)}
    assert set(bars.evaluate_all("bs => bs.map(b => b.dataset.label)")) == expected and "car" in expected
    assert page.locator("#figure-types img").bounding_box()["width"] >= 700, "the figure is drawn large"
    car = page.locator("#figure-objects .histogram a[data-label='car']")
    units = int(car.get_attribute("data-units"))
    car.click()
    assert "/dashboard/layer/" in page.url and page.locator("#detects-filter").is_visible()
    assert len(grid_units(page)) == units
    assert all(label == "car" for label in page.locator(".unit-card .label-text").all_inner_texts())


def test_a_rule_preview_needs_no_feedback_and_keeps_the_ticked_rules(page, live_server, layer) -> None:
    campaign = Campaign.objects.get(name="c")
    sign_in(page, live_server, "reviewer", "review-pw-1", f"/dashboard/campaign/{campaign.pk}/")
    page.check("input[name=rules][value=too-fast]")
    page.fill("input[name=min_seconds]", "40")
    page.click("#rule-preview")
    page.wait_for_load_state()
    assert "would be rejected" in page.content() and "preview: nothing changed" in page.content()
    assert page.is_checked("input[name=rules][value=too-fast]")
    assert page.input_value("input[name=min_seconds]") == "40"
    page.click("#rule-apply")  # applying a rejection without feedback is refused, the form kept
    page.wait_for_load_state()
    assert "Write the feedback the rejected workers will read" in page.content()
    assert page.is_checked("input[name=rules][value=too-fast]")
    assert page.input_value("input[name=min_seconds]") == "40"
    assert not Answer.objects.filter(review="rejected").exists()
