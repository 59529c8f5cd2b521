"""The fewest clicks and key presses a typical answer takes on the HIT page, by mouse and by keyboard
alone: "car", the three gold images and two of the unit's own images marked, Object, Submit. The
README's figures come from this test (`pytest -s` prints them); it keeps them from growing back."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotator.models import Answer, Hit
from tests.browser.test_hit_form import hit_url
from tests.factories import concept_network, put_on_mturk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WORD = "car"
ACTIVE = "document.activeElement"


@pytest.fixture
def hit(world_dir) -> Hit:
    concept_network(world_dir, concepts=("car", "house", "tree", "boat"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3")
    return next(hit for hit in put_on_mturk("c") if hit.unit.index == 0)


def typical_marks(hit: Hit) -> list[int]:
    gold = list(hit.slots.filter(gold=True).values_list("position", flat=True))
    own = list(hit.slots.filter(gold=False).order_by("position").values_list("position", flat=True))
    return sorted([*gold, own[10], own[40]])


def by_mouse(page, url: str, marks: list[int]) -> tuple[int, int]:
    """Clicks and keys: a click into the text box only when it has no focus on load."""
    page.goto(url)
    clicks = 0
    if page.evaluate(f"{ACTIVE}.id") != "description":
        page.locator("#description").click()
        clicks += 1
    page.keyboard.type(WORD)
    for position in marks:
        page.locator(f'label.tile[data-position="{position}"]').click()
        clicks += 1
    page.get_by_text("Object", exact=True).click()
    page.locator("#submit").click()
    return clicks + 2, len(WORD)


def by_keyboard(page, url: str, marks: list[int]) -> int:
    """Key presses with the best way the page offers: Tab to each control where every image is a tab
    stop; Enter to the grid, the arrow keys and the category keys where the grid is one tab stop."""
    page.goto(url)
    presses = 0

    def press(key: str) -> None:
        nonlocal presses
        page.keyboard.press(key)
        presses += 1

    def tab_until(check: str) -> None:
        for _ in range(300):
            if page.evaluate(check):
                return
            press("Tab")
        raise AssertionError(f"Tab never reached {check}")

    tab_until(f"{ACTIVE}.id === 'description'")
    for letter in WORD:
        press(letter)
    order = page.locator('input[name="mismatch"]').evaluate_all("bs => bs.map(b => Number(b.value))")
    one_stop = page.evaluate("document.querySelectorAll('input[name=mismatch][tabindex=\"-1\"]').length > 0")
    if one_stop:
        press("Enter")
        per_row = page.evaluate("""(() => { const t = [...document.querySelectorAll('label.tile')];
            return t.filter(e => e.offsetTop === t[0].offsetTop).length; })()""")
        here = 0
        for position in marks:
            there = order.index(position)
            rows = there // per_row - here // per_row
            columns = there % per_row - here % per_row
            vertical = ["ArrowDown" if rows > 0 else "ArrowUp"] * abs(rows)
            sideways = ["ArrowRight" if columns > 0 else "ArrowLeft"] * abs(columns)
            # Down into the last row, which may be shorter, the column is reached first (a grid moves
            # nowhere where no tile lies below); up out of it, the row first.
            for key in (sideways + vertical) if rows > 0 else (vertical + sideways):
                press(key)
            press("Space")
            here = there
        press("2")
    else:
        here = -1
        for position in marks:
            for _ in range(order.index(position) - here):
                press("Tab")
            press("Space")
            here = order.index(position)
        tab_until(f"{ACTIVE}.name === 'category'")
        press("ArrowDown")  # the second category, Object
    tab_until(f"{ACTIVE}.id === 'submit'")
    press("Enter")
    return presses


def test_fewest_clicks_and_keys_for_a_typical_answer(page, live_server, hit, fake_turk, capsys) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    marks = typical_marks(hit)
    clicks, typed = by_mouse(page, hit_url(live_server, hit, turk=fake_turk.origin), marks)
    page.wait_for_selector("#turk-done")
    keys = by_keyboard(page, hit_url(live_server, hit, assignment="A2", worker="W2", turk=fake_turk.origin), marks)
    page.wait_for_selector("#turk-done")
    answers = {a.assignment.external_id: a for a in Answer.objects.select_related("assignment")}
    for answer in answers.values():
        assert (answer.description, answer.category, sorted(answer.marked)) == (WORD, "object", marks)
    with capsys.disabled():
        print(
            f"\nA typical answer ({len(marks)} images marked, at {marks}): "
            f"by mouse {clicks} clicks and {typed} keys; by keyboard alone {keys} keys"
        )
    assert clicks == len(marks) + 2, "no click to reach the text box: it has the focus"
    assert keys < 60, "the grid is one tab stop: crossing it does not take a Tab per image"
