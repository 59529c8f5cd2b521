"""The HIT form in real Chromium: preview, a full answer by mouse and keyboard, the browser's and the
server's validation with answers kept, double submits, the hand-over to MTurk, and framing."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import call_command

from annotator.models import Answer, Hit
from tests.factories import concept_network, put_on_mturk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def hit(world_dir) -> Hit:
    concept_network(world_dir, concepts=("car", "house", "tree", "boat"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3")
    return next(hit for hit in put_on_mturk("c") if hit.unit.index == 0)


def positions(hit: Hit, gold: bool) -> list[int]:
    return list(hit.slots.filter(gold=gold).values_list("position", flat=True))


def hit_url(live_server, hit: Hit, assignment: str = "A1", turk: str = "", worker: str = "W1") -> str:
    params = {"assignmentId": assignment, "hitId": hit.remote_id, "workerId": worker, "turkSubmitTo": turk}
    return f"{live_server.url}/hit/{hit.key}/?{urlencode(params)}"


def tile(page, position: int):
    return page.locator(f'label.tile[data-position="{position}"]')


def checked(page, position: int) -> bool:
    return tile(page, position).locator("input").is_checked()


def screenshot(page, name: str, tmp_path: Path, full_page: bool = False) -> None:
    """Kept with the test's files; also written to $SCREENSHOT_DIR (the README's pictures) when set."""
    shot = page.screenshot(full_page=full_page)
    assert len(shot) > 10_000
    for folder in (tmp_path, os.environ.get("SCREENSHOT_DIR")):
        if folder:
            Path(folder, name).write_bytes(shot)


def test_preview_is_visible_but_locked(page, live_server, hit, tmp_path) -> None:
    page.goto(hit_url(live_server, hit, assignment="ASSIGNMENT_ID_NOT_AVAILABLE"))
    assert page.locator("#preview-banner").is_visible()
    assert page.locator("label.tile").count() == 60
    page.wait_for_function("Array.from(document.images).slice(0, 10).every(i => i.complete && i.naturalWidth > 0)")
    tile(page, 0).click(force=True)
    assert not checked(page, 0)
    assert page.locator("#description").is_disabled() and page.locator("#submit").is_disabled()
    assert page.locator('input[name="category"]').first.is_disabled()
    screenshot(page, "hit-preview.png", tmp_path)
    assert not Answer.objects.exists()


def test_full_answer_by_mouse_and_keyboard_reaches_mturk(page, live_server, hit, fake_turk, tmp_path) -> None:
    page.goto(hit_url(live_server, hit, turk=fake_turk.origin))
    page.locator("#description").fill("car")
    gold, own = positions(hit, True), positions(hit, False)
    for p in gold[:2]:
        tile(page, p).click()
    tile(page, own[0]).click()
    tile(page, own[0]).click()  # click again to undo
    assert not checked(page, own[0])
    # Keyboard: Space on one tile, Enter on another, arrows to move.
    tile(page, gold[2]).locator("input").focus()
    page.keyboard.press("Space")
    # Enter on an unit image whose right-hand neighbour is an unmarked unit image too: the HIT's
    # layout (drawn from the unit's id) may put a gold image there, and Space would unmark it.
    start = next(p for p in own[1:] if p + 1 in own and p + 1 != own[0])
    tile(page, start).locator("input").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    following = int(page.evaluate("document.activeElement.value"))
    assert following == start + 1
    assert all(checked(page, p) for p in [*gold, start, following])
    marked = sorted({*gold, start, following})
    badge = tile(page, gold[0]).locator(".badge")
    assert badge.is_visible(), "a marked image carries a corner mark"
    assert not tile(page, own[0]).locator(".badge").is_visible()
    marked_image = tile(page, gold[0]).locator("img")
    assert marked_image.evaluate("i => getComputedStyle(i).opacity") == "1", "a marked image stays readable"
    assert marked_image.evaluate("i => getComputedStyle(i).filter") == "none"
    assert marked_image.evaluate("i => i.getBoundingClientRect().width") >= 128
    assert page.locator("#marked-count").inner_text() == str(len(marked))
    page.get_by_text("Object", exact=True).click()
    screenshot(page, "hit-filled.png", tmp_path, full_page=True)
    page.locator("#submit").click()
    page.wait_for_selector("#turk-done")
    assert len(fake_turk.posts) == 1
    posted = fake_turk.posts[0]
    assert posted["assignmentId"] == ["A1"] and posted["description"] == ["car"] and posted["category"] == ["object"]
    answer = Answer.objects.get()
    assert answer.marked == marked and answer.category == "object" and answer.gold_passed
    assert "Chrome" in answer.user_agent


def test_the_browser_checks_what_it_can_before_sending(page, live_server, hit) -> None:
    page.goto(hit_url(live_server, hit))
    page.locator("#submit").click()
    assert page.evaluate("document.getElementById('description').validity.valueMissing")
    page.locator("#description").fill("   ")
    page.locator("#submit").click()
    assert not page.evaluate("document.getElementById('description').validity.valid")
    page.locator("#description").fill("x" * 80)
    assert len(page.locator("#description").input_value()) == 64
    page.locator("#description").fill("car")
    page.locator("#submit").click()
    assert page.evaluate("document.querySelector('input[name=category]').validity.valueMissing")
    assert "/hit/" in page.url and not Answer.objects.exists()


def _without_browser_checks(page) -> None:
    """As an old browser, or a hand-made request, would send it: only the server's rules apply."""
    page.evaluate("""document.querySelectorAll('[required],[maxlength]').forEach(e => {
        e.removeAttribute('required'); e.removeAttribute('maxlength'); e.setCustomValidity(''); });""")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("document.getElementById('description').value = '   '", "Write one or two words"),
        ("document.getElementById('description').value = 'a'.repeat(65)", "64 characters or fewer"),
        ("document.querySelectorAll('input[name=category]').forEach(e => e.checked = false)", "Choose the category"),
        (
            """(() => { const b = document.querySelector('input[name=mismatch]').cloneNode();
        b.value = '999'; b.checked = true; document.getElementById('hit-form').appendChild(b); })()""",
            "Image 999 is not part of this HIT",
        ),
    ],
)
def test_server_errors_reshow_the_form_with_every_answer_kept(page, live_server, hit, change, error) -> None:
    page.goto(hit_url(live_server, hit))
    own = positions(hit, False)[:2]
    page.locator("#description").fill("wheel")
    for p in own:
        tile(page, p).click()
    page.get_by_text("Object part", exact=True).click()
    _without_browser_checks(page)
    page.evaluate(change)
    page.locator("#submit").click()
    page.wait_for_selector("#error-summary")
    assert error in page.locator("#error-summary").inner_text()
    assert page.locator("section.invalid").count() == 1
    assert all(checked(page, p) for p in own)
    if "description" not in change:
        assert page.locator("#description").input_value() == "wheel"
    if "category" not in change:
        assert page.locator('input[name="category"][value="part"]').is_checked()
    assert not Answer.objects.exists()


def test_gold_warning_then_another_try(page, live_server, hit, fake_turk) -> None:
    page.goto(hit_url(live_server, hit, turk=fake_turk.origin))
    page.locator("#description").fill("car")
    page.get_by_text("Object", exact=True).click()
    page.locator("#submit").click()
    page.wait_for_selector("#gold-warning")
    warning = page.locator("#gold-warning").inner_text()
    assert "Try 2 of 3" in warning and "look unmarked" not in warning and "last try" not in warning
    assert page.evaluate("document.activeElement.id") == "gold-warning", "the focus is on the warning"
    page.locator("#gold-warning-images").click()  # its link goes to the images, the first in focus
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Image 1 does not match"
    assert page.locator("#description").input_value() == "car"
    page.locator("#submit").click()
    page.wait_for_selector("#gold-warning")
    assert "Try 3 of 3" in page.locator("#gold-warning").inner_text()
    assert "This is your last try" in page.locator("#gold-warning").inner_text()
    for p in positions(hit, True):
        tile(page, p).click()
    page.locator("#submit").click()
    page.wait_for_selector("#turk-done")
    answer = Answer.objects.get()
    assert answer.gold_passed and answer.gold_warnings == 2


def test_double_submit_and_replay_store_once(page, live_server, hit, fake_turk) -> None:
    page.goto(hit_url(live_server, hit, turk=fake_turk.origin))
    page.locator("#description").fill("car")
    for p in positions(hit, True):
        tile(page, p).click()
    page.get_by_text("Object", exact=True).click()
    page.locator("#submit").dblclick()
    page.wait_for_selector("#turk-done")
    assert Answer.objects.count() == 1 and len(fake_turk.posts) == 1
    # The worker opens the HIT again: stored once, answered politely, and MTurk can still be reached.
    page.goto(hit_url(live_server, hit, turk=fake_turk.origin))
    assert "We had this answer already" in page.content()
    page.get_by_role("button", name="Finish the HIT at Mechanical Turk").click()
    page.wait_for_selector("#turk-done")
    assert Answer.objects.count() == 1
    # Another worker's form posted twice at once (a replay racing the original) from the page itself.
    page.goto(hit_url(live_server, hit, assignment="A2", worker="W2"))
    token = page.locator('input[name="token"]').get_attribute("value")
    statuses = page.evaluate(
        """async ([url, token, gold]) => {
        const body = new URLSearchParams({token, description: 'house', category: 'object'});
        gold.forEach(p => body.append('mismatch', p));
        const rs = await Promise.all([fetch(url, {method: 'POST', body}), fetch(url, {method: 'POST', body})]);
        return rs.map(r => r.status); }""",
        [f"{live_server.url}/hit/{hit.key}/", token, positions(hit, True)],
    )
    assert statuses == [200, 200]
    assert Answer.objects.filter(assignment__external_id="A2").count() == 1 and Answer.objects.count() == 2


def test_only_mturk_may_frame_the_hit_page(page, live_server, hit, fake_turk) -> None:
    target = hit_url(live_server, hit, assignment="ASSIGNMENT_ID_NOT_AVAILABLE")
    page.goto(f"{fake_turk.origin}/?{urlencode({'src': target})}")
    frame = page.frame_locator("#task")
    assert frame.locator("#preview-banner").is_visible()
    for parent, src in ((fake_turk.foreign_origin, target), (fake_turk.origin, f"{live_server.url}/accounts/login/")):
        page.goto(f"{parent}/?{urlencode({'src': src})}")
        page.wait_for_timeout(500)
        child = page.frames[1]
        assert child.locator("#hit-form, form").count() == 0, f"{src} was framed by {parent}"


def test_keyboard_first(page, live_server, hit) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(hit_url(live_server, hit))
    assert page.evaluate("document.activeElement.id") == "description", "the text box has focus on load"
    page.keyboard.type("car")
    page.keyboard.press("Enter")  # goes on to the images; a half-done form is not sent
    assert "/hit/" in page.url and not Answer.objects.exists()
    active = "document.activeElement.name === 'mismatch' ? Number(document.activeElement.value) : -1"
    assert page.evaluate(active) == 0
    per_row = page.evaluate("""(() => { const t = [...document.querySelectorAll('label.tile')];
        return t.filter(e => e.offsetTop === t[0].offsetTop).length; })()""")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(active) == per_row
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")
    assert page.evaluate(active) == 1
    page.keyboard.press("Space")
    assert checked(page, 1)
    page.keyboard.press("Tab")  # the grid is one tab stop: Tab leaves it
    assert page.evaluate("document.activeElement.name") != "mismatch"
    page.keyboard.press("2")
    assert page.locator('input[name="category"][value="object"]').is_checked()
    # A server error's summary link puts the cursor in the field.
    _without_browser_checks(page)
    page.evaluate("document.getElementById('description').value = '   '")
    page.locator("#submit").click()
    page.wait_for_selector("#error-summary")
    page.locator("#error-summary a").first.click()
    assert page.evaluate("document.activeElement.id") == "description"


def test_a_draft_survives_a_reload_and_the_instructions_fold_after_a_first_hit(
    page, live_server, hit, fake_turk
) -> None:
    page.goto(hit_url(live_server, hit, turk=fake_turk.origin))
    assert page.locator("#instructions").evaluate("d => d.open"), "a first HIT shows the instructions"
    page.locator("#description").fill("wheel")
    own = positions(hit, False)[:2]
    for p in own:
        tile(page, p).click()
    page.get_by_text("Object part", exact=True).click()
    page.reload()
    assert page.locator("#description").input_value() == "wheel"
    assert all(checked(page, p) for p in own) and page.locator("#marked-count").inner_text() == "2"
    assert page.locator('input[name="category"][value="part"]').is_checked()
    for p in positions(hit, True):
        tile(page, p).click()
    page.locator("#submit").click()
    page.wait_for_selector("#turk-done")
    # The next HIT: the instructions are folded (one click opens them), and its form starts empty.
    page.goto(hit_url(live_server, hit, assignment="A2", worker="W2"))
    assert not page.locator("#instructions").evaluate("d => d.open")
    assert page.locator("#description").input_value() == ""


def test_one_image_large_and_submit_always_in_view(page, live_server, hit) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(hit_url(live_server, hit))
    page.wait_for_function("Array.from(document.images).slice(0, 10).every(i => i.complete && i.naturalWidth > 0)")
    tile(page, 0).locator("input").focus()
    page.keyboard.press("z")
    large = page.locator("#zoom img")
    assert page.locator("#zoom").is_visible() and large.bounding_box()["width"] >= 500
    assert large.get_attribute("src").endswith(tile(page, 0).locator("img").get_attribute("src"))
    page.keyboard.press("Escape")
    assert not page.locator("#zoom").is_visible()
    tile(page, 5).hover()
    page.wait_for_timeout(1000)  # resting the mouse on an image shows it large
    assert page.locator("#zoom").is_visible()
    assert large.get_attribute("src").endswith(tile(page, 5).locator("img").get_attribute("src"))
    page.mouse.move(5, 5)
    assert not page.locator("#zoom").is_visible()
    # Halfway down the grid the bar with Submit is still in view, and names the chosen category.
    tile(page, 30).scroll_into_view_if_needed()
    tile(page, 30).locator("input").focus()
    page.keyboard.press("4")
    box = page.locator("#submit").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 768
    assert page.locator("#chosen-category").inner_text() == "Category: Object part"


def test_submit_stays_in_view_inside_mturks_frame(page, live_server, hit, fake_turk) -> None:
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{fake_turk.origin}/?{urlencode({'src': hit_url(live_server, hit)})}")
    frame = next(f for f in page.frames if "/hit/" in f.url)
    frame.wait_for_selector("#hit-form")
    frame.locator('label.tile[data-position="40"]').scroll_into_view_if_needed()
    assert frame.evaluate("window.scrollY") > 0
    inside = frame.evaluate("""(() => { const r = document.getElementById('submit').getBoundingClientRect();
        return r.top >= 0 && r.bottom <= window.innerHeight; })()""")
    assert inside, "the bar with Submit is in view within the 800-px frame while the grid scrolls"


def test_on_a_phone_the_page_fits_and_submit_stays_in_view(page, live_server, hit) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(hit_url(live_server, hit))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    tile(page, 30).scroll_into_view_if_needed()
    box = page.locator("#submit").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
