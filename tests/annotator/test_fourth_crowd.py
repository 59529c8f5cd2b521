"""A fourth crowd is one adapter module and one line in settings.CROWDS: the test-only Toy crowd
(`toy_crowd`) publishes, takes answers on its own page, syncs, decides, pays, blocks and expires a
campaign through the same commands and dashboard pages as the real crowds, and nothing else in the
tool had to change for it."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import clear_url_caches, reverse

from annotator.models import Answer, Campaign, Hit, ReviewAction, Worker
from tests.annotator import toy_crowd
from tests.factories import concept_network

pytestmark = pytest.mark.django_db


def _reload_urls() -> None:
    import annotator.urls
    import config.urls

    importlib.reload(annotator.urls)
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.fixture
def toy(settings):
    """The Toy crowd registered by its one line, its (fresh) platform, and the URLconf with its page."""
    toy_crowd.PLATFORM.__init__()
    with override_settings(CROWDS=[*settings.CROWDS, "tests.annotator.toy_crowd.ToyCrowd"]):
        _reload_urls()
        yield toy_crowd.PLATFORM
    _reload_urls()


@pytest.fixture
def campaign(world_dir, toy) -> Campaign:
    concept_network(world_dir, concepts=("car", "house"))
    call_command(
        "create_campaign",
        "t",
        "--network",
        "world",
        "--layers",
        "conv3",
        "--images-per-hit",
        "12",
        "--answers-per-unit",
        "2",
        "--reward",
        "0.20",
    )
    return Campaign.objects.get(name="t")


def answer_on_toy(client: Client, hit: Hit, worker: str, *, mark_gold: bool = True) -> Answer:
    url = toy_crowd.toy_url(hit, worker)
    page = client.get(url)
    assert page.status_code == 200, page.content[:300]
    token = page.context["page"].hidden["token"]
    gold = [str(p) for p in hit.slots.filter(gold=True).values_list("position", flat=True)]
    for _ in range(3 if not mark_gold else 1):
        response = client.post(
            url.split("?")[0],
            {
                "token": token,
                "description": "car" if mark_gold else "asdf",
                "category": "object",
                "mismatch": gold if mark_gold else [],
            },
        )
    assert response.status_code == 200 and b"Thank you" in response.content, response.content[:500]
    return Answer.objects.get(worker__external_id=worker, hit=hit)


def test_a_fourth_crowd_runs_a_campaign_through_the_same_commands_and_pages(campaign, toy, admin_client, capsys):
    # Publish: the plan first (its money needs a confirmation), then one job a HIT, safe to run again.
    call_command("publish", "t", "--backend", "toy", "--dry-run")
    assert "Publishing 't' on Toy (play money):\n2 jobs, $0.80" in capsys.readouterr().out and not toy.jobs
    with pytest.raises(CommandError, match="Publishing on Toy spends money"):
        call_command("publish", "t", "--backend", "toy")
    call_command("publish", "t", "--backend", "toy", "--yes", "--toy-note", "pilot")
    assert "2 Toy jobs created." in capsys.readouterr().out
    campaign.refresh_from_db()
    assert (campaign.platform, campaign.status, campaign.crowd_state["note"]) == ("toy", "published", "pilot")
    call_command("publish", "t", "--backend", "toy", "--yes")
    assert len(toy.jobs) == 2 and "0 Toy jobs created." in capsys.readouterr().out
    with pytest.raises(CommandError, match="runs on one backend"):
        call_command("publish", "t", "--backend", "local")

    # Workers answer on the crowd's own page; the answers wait for the platform's word.
    car = campaign.hits.get(unit__index=0)
    careful = answer_on_toy(Client(), car, "TW1")
    sloppy = answer_on_toy(Client(), car, "TW2", mark_gold=False)
    assert (careful.source, careful.confirmation, careful.counts) == ("toy", "unconfirmed", False)
    assert Worker.objects.get(external_id="TW1").kind == "toy"

    # Sync: the platform lists both assignments, so both count.
    call_command("sync", "t")
    assert "t: 2 answers listed by Toy." in capsys.readouterr().out
    assert set(Answer.objects.values_list("counts", flat=True)) == {True}
    page = admin_client.get(reverse("dashboard-campaign", args=[campaign.pk])).content.decode()
    assert "Toy crowd" in page and 'id="sync"' in page and "Sync with Toy" in page

    # Decide: by rule from the command (on the platform first), and one answer from the dashboard.
    call_command("review", "t", "--reject-rule", "nonsense", "gold-failed", "--feedback", "See the instructions")
    assert "By rule: 1 answers were rejected, 0 approved, 0 refused." in capsys.readouterr().out
    assert toy.assignments[sloppy.assignment.external_id]["state"] == "rejected"
    response = admin_client.post(reverse("dashboard-answer-approve", args=[careful.pk]), follow=True)
    assert f"Answer {careful.pk} is approved and paid." in response.content.decode()
    assert toy.assignments[careful.assignment.external_id]["state"] == "approved"

    # Pay: a bonus from the dashboard, paid on the platform once; the money shows on the campaign page.
    admin_client.post(reverse("dashboard-answer-bonus", args=[careful.pk]), {"amount": "0.50", "reason": "Careful"})
    assert toy.paid == [("TW1", Decimal("0.50"), f"bonus-{careful.pk}-1")]
    toy.refuse = "out of play money"
    with pytest.raises(CommandError, match="Toy refused: out of play money"):
        call_command("bonus", careful.assignment.external_id, "--amount", "1", "--reason", "again")
    assert len(toy.paid) == 1
    page = admin_client.get(reverse("dashboard-campaign", args=[campaign.pk])).content.decode()
    assert "Spent $0.70 on 1 approved job and $0.50 in bonuses" in page and "(rewards at face value)" in page

    # Block a worker there, and expire the jobs: the same command and dashboard action as for MTurk's HITs.
    call_command("annotators", "block", "TW2", "--reason", "Random answers")
    assert "TW2" in toy.blocked and Worker.objects.get(external_id="TW2").blocked
    admin_client.post(reverse("dashboard-campaign-action", args=[campaign.pk]), {"action": "expire"})
    assert not any(job["open"] for job in toy.jobs.values())
    assert ReviewAction.objects.filter(action="expire").exists()
    call_command("hits", "t", "expire")
    assert "expire: 2 HITs, 0 refused." in capsys.readouterr().out


def test_the_real_crowds_know_nothing_of_it(world_dir) -> None:
    """Without its line in settings.CROWDS the Toy crowd is no backend at all."""
    concept_network(world_dir, concepts=("car",))
    call_command("create_campaign", "n", "--network", "world", "--layers", "conv3")
    with pytest.raises(CommandError, match="invalid choice: 'toy'"):
        call_command("publish", "n", "--backend", "toy")
