"""A local annotator in real Chromium: a lab link signs them in, "Next HIT" opens a HIT, and the
answer they submit (a CSRF-protected, same-origin post) is stored and the next HIT follows."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotator.models import Answer, Hit
from annotator.services.workers import lab_link_create
from tests.factories import concept_network

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def start_page(page, live_server, world_dir, label: str, *extra: str) -> None:
    """A local campaign over two concept units, and a lab-link annotator on its start page."""
    concept_network(world_dir, concepts=("car", "house"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", *extra)
    call_command("publish", "c", "--backend", "local")
    _, path = lab_link_create(label=label)
    page.goto(f"{live_server.url}{path}")
    page.click("#start")


def test_a_lab_link_annotator_answers_two_hits(page, live_server, world_dir) -> None:
    start_page(page, live_server, world_dir, "seat-01", "--images-per-hit", "12")
    page.click("text=Next HIT")
    for number in (1, 2):
        key = page.url.rstrip("/").rsplit("/", 1)[-1]
        hit = Hit.objects.get(assignments__external_id=key)
        assert page.locator("label.tile").count() == hit.slots.count()
        for position in hit.slots.filter(gold=True).values_list("position", flat=True):
            page.locator(f'label.tile[data-position="{position}"]').click()
        page.locator("#description").fill("thing")
        page.get_by_text("Object", exact=True).click()
        page.locator("#submit").click()
        page.wait_for_load_state()
        assert Answer.objects.count() == number
    assert page.locator("#nothing-left").is_visible()
    assert {(a.worker.external_id, a.gold_passed) for a in Answer.objects.all()} == {("seat-01", True)}


def test_the_start_page_explains_and_an_open_hit_resumes_with_its_draft(page, live_server, world_dir) -> None:
    start_page(page, live_server, world_dir, "seat-02", "--images-per-hit", "12")
    assert "write one or two words" in page.locator("#task-summary").inner_text()
    assert "“car”" in page.locator("#task-example").inner_text()
    page.get_by_role("button", name="Next HIT").click()
    page.locator("#description").fill("wheel")
    page.locator("label.tile").first.click()
    hit_page = page.url
    page.goto(f"{live_server.url}/annotate/")  # the worker leaves the HIT open
    page.get_by_role("button", name="Continue your open HIT").click()
    assert page.url.split("?")[0] == hit_page.split("?")[0]
    assert page.locator("#description").input_value() == "wheel", "the draft came back"
    assert page.locator("label.tile input").first.is_checked()


def test_the_first_screen_of_images_is_there_when_the_page_has_loaded(page, live_server, world_dir) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    start_page(page, live_server, world_dir, "seat-03")
    page.get_by_role("button", name="Next HIT").click()
    page.wait_for_load_state("load")  # the load event waits for eagerly requested images only
    in_view = page.evaluate("""[...document.querySelectorAll('label.tile img')].filter(i => {
        const r = i.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; })
        .map(i => ({eager: i.loading === 'eager', shown: i.complete && i.naturalWidth > 0}))""")
    assert in_view and all(i["eager"] and i["shown"] for i in in_view), in_view
    # The rest follow right after, so that scrolling down shows no empty tiles.
    page.wait_for_function("[...document.querySelectorAll('label.tile img')].every(i => i.complete && i.naturalWidth)")
    page.locator("label.tile").last.scroll_into_view_if_needed()
    assert page.locator("label.tile img").last.evaluate("i => i.naturalWidth") > 0
