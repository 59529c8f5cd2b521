"""The presence HIT in real Chromium, at a desktop's and a phone's size: keyboard first (Y and N answer
the image in focus and move on, the arrow keys move), large whole images, axe-core clean; and the unit
page's evaluation beyond the top images once the simulated crowd has rated them."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotator.models import Answer, Campaign, Hit, Unit
from annotator.services.simulated_crowd import CrowdSettings, crowd_simulate
from annotator.services.workers import lab_link_create
from tests.browser.conftest import accessibility_problems, sign_in_as_reviewer
from tests.browser.test_hit_form import screenshot
from tests.factories import presence_world

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def campaign(world_dir) -> Campaign:
    presence_world(world_dir)
    call_command("create_campaign", "p", "--task", "presence", "--from", "c", "--images", "30")
    call_command("publish", "p", "--backend", "local")
    return Campaign.objects.get(name="p")


def open_hit(page, live_server, label: str) -> Hit:
    _, path = lab_link_create(label=label)
    page.goto(f"{live_server.url}{path}")
    page.click("#start")
    page.get_by_role("button", name="Next HIT").click()
    page.wait_for_selector("fieldset.rating")
    key = page.url.rstrip("/").rsplit("/", 1)[-1]
    return Hit.objects.get(assignments__external_id=key)


@pytest.mark.parametrize("size", [(1366, 768), (390, 844)])
def test_keyboard_answers_every_image_and_the_page_is_accessible(
    page, live_server, campaign, axe_source, size, tmp_path
):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    hit = open_hit(page, live_server, f"rater-{size[0]}")
    slots = hit.slots.count()
    assert hit.label in page.locator("h1").inner_text()
    assert page.locator("fieldset.rating").count() == slots
    width = page.locator("fieldset.rating img").first.bounding_box()["width"]
    assert width >= (200 if size[0] > 1000 else 150), f"images {width:.0f} px wide are too small to judge"
    assert accessibility_problems(page, axe_source) == []
    first = page.locator("fieldset.rating").first.get_attribute("data-position")
    assert page.evaluate("document.activeElement.id") == f"image-{first}-yes", "the first image is in focus"
    page.keyboard.press("y")  # image 1: yes, and on to image 2
    page.keyboard.press("n")  # image 2: no, and on to image 3
    page.wait_for_function("[...document.images].slice(0, 6).every(i => i.complete && i.naturalWidth > 0)")
    screenshot(page, "hit-presence.png" if size[0] > 1000 else "hit-presence-phone.png", tmp_path)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # back to image 1, its answer kept
    focused = page.evaluate("document.activeElement.closest('fieldset').dataset.position")
    positions = [page.locator("fieldset.rating").nth(i).get_attribute("data-position") for i in range(slots)]
    assert focused == positions[0] and page.evaluate("document.activeElement.value") == "yes"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    for _ in range(slots - 2):
        page.keyboard.press("y")
    assert page.locator("#answered-count").inner_text() == str(slots)
    assert page.evaluate(
        "[...document.querySelectorAll('fieldset.rating')].every(f => { const r = f.getBoundingClientRect();"
        " return r.right <= window.innerWidth + 1; })"
    ), "nothing sticks out sideways"
    page.locator("#submit").click()
    page.wait_for_load_state()
    answer = Answer.objects.get(hit=hit)
    expected = {positions[0]: True, positions[1]: False, **{p: True for p in positions[2:]}}
    assert answer.ratings == expected


def test_a_missing_answer_is_named_and_the_link_goes_to_its_image(page, live_server, campaign, axe_source):
    hit = open_hit(page, live_server, "rater-missing")
    page.evaluate("document.querySelector('form#hit-form').noValidate = true")
    for _ in range(hit.slots.count() - 1):
        page.keyboard.press("n")
    page.locator("#submit").click()
    page.wait_for_selector("#error-summary")
    assert "Answer Yes or No for image" in page.locator("#error-summary").inner_text()
    assert page.locator("#answered-count").inner_text() == str(hit.slots.count() - 1), "the answers were kept"
    assert accessibility_problems(page, axe_source) == []
    page.locator("#error-summary a").first.click()
    assert page.evaluate("document.activeElement.type") == "radio"
    assert not Answer.objects.filter(hit=hit).exists()


def test_the_unit_page_shows_the_label_beyond_the_top_images(page, live_server, campaign, axe_source, tmp_path):
    crowd_simulate(campaign=campaign, settings=CrowdSettings(workers=3, spammers=0, noise=0.1))
    sign_in_as_reviewer(page, live_server)
    unit = Unit.objects.get(index=0, layer__network__name="world")
    page.goto(f"{live_server.url}/dashboard/unit/{unit.pk}/")
    assert page.locator("#rho").is_visible() and page.locator("#rho-interval").is_visible()
    assert accessibility_problems(page, axe_source) == []
    assert page.locator("#answers").bounding_box()["y"] < page.locator("#top-images").bounding_box()["y"]
    screenshot(page, "dashboard-unit.png", tmp_path, full_page=True)  # the evidence first, top images folded
    page.locator("details.draws summary").click()
    assert page.locator("#draws-table tbody tr").count() == 30
    page.wait_for_function(
        "[...document.querySelectorAll('.draw-thumb')].slice(0, 8).every(i => i.complete && i.naturalWidth > 0)"
    )
    screenshot(page, "dashboard-evaluation.png", tmp_path)
    page.goto(f"{live_server.url}/dashboard/network/{unit.layer.network_id}/figures/")
    assert accessibility_problems(page, axe_source) == []
    page.locator(f'#figure-beyond-top a[data-unit="{unit.index}"] circle').click()
    assert page.url.endswith(f"/dashboard/unit/{unit.pk}/")
