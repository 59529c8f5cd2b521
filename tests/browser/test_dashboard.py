"""The staff dashboard in real Chromium: signing in through the admin login, staff-only access, the
unit grid's sort and filter controls, a review by override and by rejecting an answer, and figure
downloads."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from annotator.models import Answer, Hit, Layer, Network, UnitLabel
from tests.factories import answer_hit, concept_network

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
