"""axe-core (the npm package, injected into real Chromium) finds no accessibility violation above minor
on the pages annotators and reviewers use, at a desktop's size (1366 x 768) and a phone's (390 x 844):
the HIT page in each of its states, the start page, the Prolific pages, and every dashboard page.
The controls' names and the marked state reach assistive technology."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from annotator.models import AutoLabel, Campaign, Hit, Layer, Unit
from annotator.services.workers import lab_link_create
from tests.browser.conftest import accessibility_problems, sign_in_as_reviewer
from tests.browser.test_hit_form import _without_browser_checks, hit_url, positions, tile
from tests.factories import answer_hit, concept_network, put_on_mturk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]
SIZES = pytest.mark.parametrize("size", [(1366, 768), (390, 844)], ids=["desktop", "phone"])


@pytest.fixture
def world(world_dir) -> Hit:
    """A local campaign with answers (for the dashboard) and an MTurk one (for the HIT page's states)."""
    concepts = ("car", "house", "tree")
    concept_network(world_dir, concepts=concepts)
    call_command("create_campaign", "local", "--network", "world", "--layers", "conv3")
    call_command("publish", "local", "--backend", "local")
    local = {i: Hit.objects.get(campaign__name="local", unit__index=i) for i in range(3)}
    for i, worker in enumerate(("w1", "w2", "w3")):
        answer_hit(local[0], worker, "car", "object", wrong=i)
        answer_hit(local[1], worker, ("house", "building", "house")[i], "object")
    call_command("create_campaign", "turk", "--network", "world", "--layers", "conv3")
    return next(hit for hit in put_on_mturk("turk") if hit.unit.index == 0)


def assert_accessible(page, axe_source: str, what: str) -> None:
    problems = accessibility_problems(page, axe_source)
    assert not problems, f"{what}:\n" + "\n".join(problems)


@SIZES
def test_the_hit_page_in_every_state(page, live_server, world, axe_source, fake_turk, size) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    hit = world
    page.goto(hit_url(live_server, hit, assignment="ASSIGNMENT_ID_NOT_AVAILABLE"))
    assert_accessible(page, axe_source, "HIT preview")
    page.goto(hit_url(live_server, hit, turk=fake_turk.origin))
    assert_accessible(page, axe_source, "HIT, answering")
    # Every image's box is named, and its marked state reaches assistive technology.
    first = tile(page, 0).locator("input")
    assert page.get_by_role("checkbox", name="Image 1 does not match").count() == 1
    first.focus()
    page.keyboard.press("Space")
    assert page.get_by_role("checkbox", name="Image 1 does not match", checked=True).count() == 1
    assert page.locator("#marked-count").evaluate("e => e.closest('[aria-live]') !== null"), "the count is announced"
    page.keyboard.press("Space")
    page.locator("#description").fill("car")
    page.get_by_text("Object", exact=True).click()
    page.locator("#submit").click()
    page.wait_for_selector("#gold-warning")
    assert_accessible(page, axe_source, "HIT, gold warning")
    for p in positions(hit, True):
        tile(page, p).click()
    _without_browser_checks(page)
    page.evaluate("document.getElementById('description').value = '   '")
    page.locator("#submit").click()
    page.wait_for_selector("#error-summary")
    assert_accessible(page, axe_source, "HIT, an error")


@SIZES
def test_the_start_page_and_the_local_hit(page, live_server, world, axe_source, size) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    _, path = lab_link_create(label="seat-01")
    page.goto(f"{live_server.url}{path}")
    assert_accessible(page, axe_source, "lab link page")
    page.click("#start")
    assert_accessible(page, axe_source, "start page")
    page.click("text=Next HIT")
    page.wait_for_selector("#hit-form")
    assert_accessible(page, axe_source, "local HIT page")
    page.goto(f"{live_server.url}/accounts/login/")
    assert_accessible(page, axe_source, "sign-in page")


@SIZES
def test_the_dashboard(page, live_server, world, axe_source, size) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    sign_in_as_reviewer(page, live_server)
    layer = Layer.objects.get(network__name="world")
    unit = Hit.objects.get(campaign__name="local", unit__index=0).unit
    campaign = Campaign.objects.get(name="local")
    # Automatic labels, two of them withheld by a blind review: the notes and the campaign's control too.
    for u in layer.units.all():
        AutoLabel.objects.create(unit=u, source="iou", label="car", score=0.1 * u.index, detector=u.index > 0)
    call_command(
        "create_campaign", "blind", "--network", "world", "--layers", "conv3", "--units", "iou-below", "0.15",
        "--hide-automatic",
    )  # fmt: skip
    for what, path in (
        ("index", "/dashboard/"),
        ("unit grid", f"/dashboard/layer/{layer.pk}/"),
        ("unit page", f"/dashboard/unit/{unit.pk}/"),
        ("unit page, shown", f"/dashboard/unit/{Unit.objects.get(layer=layer, index=2).pk}/"),
        ("crowd vs NetDissect, withheld", f"/dashboard/layer/{layer.pk}/netdissect/?source=iou"),
        ("campaign page", f"/dashboard/campaign/{campaign.pk}/"),
        ("blind campaign page", f"/dashboard/campaign/{Campaign.objects.get(name='blind').pk}/"),
        ("MTurk campaign page", f"/dashboard/campaign/{Campaign.objects.get(name='turk').pk}/"),
        ("figures", f"/dashboard/network/{layer.network_id}/figures/"),
    ):
        page.goto(f"{live_server.url}{path}")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert_accessible(page, axe_source, what)


@SIZES
def test_the_crowd_beside_netdissect(page, live_server, axe_source, size) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    fixtures = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "zhou2015"
    call_command(
        "import_annotations", str(fixtures / "places205-alexnet_annotations.csv"), "--network", "places205-alexnet"
    )
    call_command(
        "import_netdissect",
        str(fixtures / "netdissect_caffe_reference_places205.csv"),
        "--network",
        "places205-alexnet",
        "--layer",
        "pool5",
    )
    sign_in_as_reviewer(page, live_server)
    layer = Layer.objects.get(network__name="places205-alexnet", name="pool5")
    page.goto(f"{live_server.url}/dashboard/layer/{layer.pk}/netdissect/")
    assert page.locator("table").count() >= 1
    assert_accessible(page, axe_source, "crowd vs NetDissect")


@SIZES
def test_the_prolific_participants_page_and_campaign_page(
    page, live_server, world_dir, axe_source, prolific_service, size
) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    concept_network(world_dir, concepts=("car", "house", "tree"))
    call_command("create_campaign", "p", "--network", "world", "--layers", "conv3", "--images-per-hit", "12")
    call_command("publish", "p", "--backend", "prolific", "--external-url", live_server.url, "--yes")
    campaign = Campaign.objects.get(name="p")
    page.goto(prolific_service.study_link(campaign.crowd_state["study_id"], "a" * 24))
    page.wait_for_selector("#hit-form")
    assert_accessible(page, axe_source, "Prolific participant's HIT page")
    sign_in_as_reviewer(page, live_server)
    page.goto(f"{live_server.url}/dashboard/campaign/{campaign.pk}/")
    assert page.locator("#participants").is_visible()
    assert_accessible(page, axe_source, "Prolific campaign page")
