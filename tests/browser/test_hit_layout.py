"""The describe HIT's layout at a desktop's size (1366 x 768) and on a phone (390 x 844, a touch
screen): what the first screen shows, the focused element never under the sticky bar, no keyboard
hints and no autofocus on touch, and every dashboard page fitting a phone's width."""

from __future__ import annotations

import pytest

from annotator.models import Campaign, Hit, Layer
from tests.browser.conftest import sign_in_as_reviewer
from tests.browser.test_hit_form import hit_url, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

BAR_TOP = "document.getElementById('submit-bar').getBoundingClientRect().top"
WHOLE_TILES = """(() => { const bar = document.getElementById('submit-bar').getBoundingClientRect().top;
    return [...document.querySelectorAll('label.tile')].filter(t => {
        const r = t.getBoundingClientRect(); return r.top >= 0 && r.bottom <= bar; }).length; })()"""


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def hit(world_dir) -> Hit:
    from django.core.management import call_command

    from tests.factories import concept_network, put_on_mturk

    concept_network(world_dir, concepts=("car", "house", "tree", "boat"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3")
    return next(hit for hit in put_on_mturk("c") if hit.unit.index == 0)


def focused_clear_of_bar(page) -> bool:
    """The focused element's box (a tile's, for an image's box) lies whole between the top of the
    window and the top of the bar."""
    return page.evaluate(
        """(() => { const el = document.activeElement; const box = (el.closest('label.tile') || el)
            .getBoundingClientRect(); const bar = document.getElementById('submit-bar').getBoundingClientRect();
            return box.top >= 0 && box.bottom <= bar.top + 0.5; })()"""
    )


def test_on_a_desktop_the_page_has_a_heading_and_more_images_above_the_fold(page, live_server, hit) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(hit_url(live_server, hit))
    assert page.locator("h1").inner_text() == "Describe what the highlighted regions share"
    assert page.locator("#instructions").evaluate("d => d.open"), "the first HIT opens its instructions"
    assert "arrow keys" in page.locator("#instructions").inner_text(), "the keyboard hint is in the instructions"
    assert "arrow keys" not in page.locator("#step-mismatch h2").inner_text()
    assert page.evaluate(WHOLE_TILES) >= 18, "two rows of images on the first screen (9 before)"
    assert page.evaluate("document.activeElement.id") == "description", "a keyboard's first stop"
    page.keyboard.press("Enter")  # to the images
    for _ in range(6):  # down the grid: each focused image whole above the bar
        page.keyboard.press("ArrowDown")
        assert focused_clear_of_bar(page), page.evaluate("document.activeElement.getAttribute('aria-label')")


def test_on_a_phone_three_columns_no_key_hints_no_autofocus_nothing_under_the_bar(
    phone, live_server, hit, tmp_path
) -> None:
    page = phone
    page.goto(hit_url(live_server, hit))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    tops = page.evaluate("[...document.querySelectorAll('label.tile')].slice(0, 4).map(t => t.offsetTop)")
    assert tops[0] == tops[1] == tops[2] < tops[3], "three images a row"
    width = page.locator("label.tile img").first.bounding_box()["width"]
    assert 105 <= width <= 125, f"images {width:.0f} px wide"
    chips = page.evaluate("[...document.querySelectorAll('.steps li')].map(c => c.getBoundingClientRect().top)")
    assert len(set(chips)) == 1, "the three step chips fit one row"
    assert page.evaluate("document.activeElement.tagName") == "BODY", "no autofocus: the keyboard stays down"
    for hint in (".categories .key", "#step-category h2 .key-hint", "#marking-help .key-hint"):
        assert not page.locator(hint).first.is_visible(), hint
    assert "press 1 to 6" not in page.locator("#chosen-category").inner_text()
    assert not page.locator("#instructions").evaluate("d => d.open"), "folded on a phone, its gist in the summary"
    assert "mark the images that don't show it" in page.locator("#instructions summary").inner_text()
    assert page.evaluate(WHOLE_TILES) >= 6, "two whole rows of images above the bar on the first screen (none before)"
    categories = page.locator("#step-category").bounding_box()["y"] + page.evaluate("window.scrollY")
    assert categories < 3600, f"the categories start at {categories:.0f} px (5,530 before)"
    page.wait_for_function("[...document.images].slice(0, 9).every(i => i.complete && i.naturalWidth > 0)")
    screenshot(page, "hit-phone.png", tmp_path)
    # The text box, focused after a scroll, is scrolled clear of the bar.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.locator("#description").focus()
    assert focused_clear_of_bar(page)
    for i in range(8):  # down the grid from the keyboard (an external one): never under the bar
        page.locator("label.tile input").nth(i * 3).focus() if i == 0 else page.keyboard.press("ArrowDown")
        assert focused_clear_of_bar(page), i


def test_every_dashboard_page_fits_a_phone_and_its_tables_scroll_in_their_own_box(
    phone, live_server, world_dir
) -> None:
    from django.core.management import call_command

    from tests.factories import answer_hit, concept_network

    concept_network(world_dir, concepts=("car", "house", "tree"))
    call_command("create_campaign", "local", "--network", "world", "--layers", "conv3")
    call_command("publish", "local", "--backend", "local")
    hit = Hit.objects.get(campaign__name="local", unit__index=0)
    for i, worker in enumerate(("w1", "w2", "w3")):
        answer_hit(hit, worker, "car", "object", wrong=i)
    page = phone
    sign_in_as_reviewer(page, live_server)
    layer = Layer.objects.get(network__name="world")
    campaign = Campaign.objects.get(name="local")
    for path in (
        "/dashboard/",
        f"/dashboard/layer/{layer.pk}/",
        f"/dashboard/unit/{hit.unit_id}/",
        f"/dashboard/campaign/{campaign.pk}/",
        f"/dashboard/network/{layer.network_id}/figures/",
    ):
        page.goto(f"{live_server.url}{path}")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide on a 390-px screen"
        outside = page.evaluate(
            "[...document.querySelectorAll('table')].filter(t => !t.closest('.table-scroll')).length"
        )
        assert outside == 0, f"{path}: every table scrolls in its own box"
