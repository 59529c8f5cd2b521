"""A campaign's blind review: `create_campaign --hide-automatic` (or its dashboard page) withholds the
automatic labels of the units it asks about from every dashboard page (cards, the agree / disagree
filter, unit pages, the comparison with the crowd, the summaries and the bar graph) until the
campaign shows them or finishes; the other units' labels still show, the command line still reads
them all, only a HIT manager may lift it, each change is logged, and annotators never see them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotator.models import AutoLabel, Campaign, Category, Image, Layer, PresenceDraw, ReviewAction, Unit
from annotator.services import export
from tests.factories import concept_network, put_on_mturk

pytestmark = pytest.mark.django_db
IOUS = {"car": 0.20, "house": 0.10, "tree": 0.01, "boat": 0.02}  # units 0-3; tree and boat are below 0.04


@pytest.fixture
def layer(world_dir) -> Layer:
    concept_network(world_dir, concepts=tuple(IOUS))
    layer = Layer.objects.get(network__name="world")
    for unit in Unit.objects.filter(layer=layer).order_by("index"):
        label = list(IOUS)[unit.index]
        AutoLabel.objects.create(
            unit=unit,
            source="iou",
            label=label,
            category=Category.OBJECT,
            source_category="object",
            score=IOUS[label],
            detector=True,  # every one a detector, so that the bar graph names each
            threshold=1.0,
        )
    return layer


def client_in(*groups: str) -> Client:
    user, _ = get_user_model().objects.get_or_create(username="-".join(groups), defaults={"is_staff": True})
    user.groups.add(*Group.objects.filter(name__in=groups))
    client = Client()
    client.force_login(user)
    return client


def auto_texts(page: str) -> list[str]:
    return re.findall(r'class="auto-text">([^<]*)<', page)


def pages(layer: Layer) -> dict[str, str]:
    reviewer = client_in("reviewer")
    units = {u.index: u.pk for u in layer.units.all()}
    get = {
        "grid": reverse("dashboard-layer", args=[layer.pk]),
        "disagree": reverse("dashboard-layer", args=[layer.pk]) + "?auto=disagree",
        "unit0": reverse("dashboard-unit", args=[units[0]]),
        "unit2": reverse("dashboard-unit", args=[units[2]]),
        "comparison": reverse("dashboard-netdissect", args=[layer.pk]) + "?source=iou",
        "figures": reverse("dashboard-figures", args=[layer.network_id]),
    }
    out = {}
    for name, url in get.items():
        response = reviewer.get(url)
        assert response.status_code == 200, url
        out[name] = response.content.decode()
    return out


def bars(figures: str) -> list[str]:
    return re.findall(r'data-label="([^"]*)"', figures.split('id="figure-automatic"')[1])


def test_a_blind_review_withholds_its_units_automatic_labels_from_every_dashboard_page(layer) -> None:
    call_command(
        "create_campaign", "blind", "--network", "world", "--layers", "conv3", "--units", "iou-below", "0.04",
        "--images-per-hit", "20", "--hide-automatic",
    )  # fmt: skip
    blind = Campaign.objects.get(name="blind")
    assert not blind.reviewers_see_automatic and blind.hits.count() == 2  # tree and boat
    seen = pages(layer)
    assert auto_texts(seen["grid"]) == ["car", "house"], "the others' automatic labels still show"
    assert auto_texts(seen["disagree"]) == ["car", "house"], "the filter cannot reveal a withheld label"
    assert 'id="withheld"' in seen["grid"] and "The automatic labels of 2 units are withheld" in seen["grid"]
    assert f'href="/dashboard/campaign/{blind.pk}/">blind</a> runs a blind review' in seen["grid"]
    assert "<strong>2</strong> of 2 units are detectors" in seen["grid"], "the summary counts the shown units"
    assert "IoU 0.200" in seen["unit0"] and 'id="withheld"' not in seen["unit0"]
    assert "IoU" not in seen["unit2"] and "tree" not in seen["unit2"].split('id="withheld"')[0].split("<h1")[1]
    assert "Its automatic label is withheld" in seen["unit2"]
    rows = re.findall(r'<tr class="[^"]*"><td><a href="/dashboard/unit/\d+/">(\d+)</a>', seen["comparison"])
    assert rows == ["0", "1"] and "2 units left out" in seen["comparison"]
    assert bars(seen["figures"]) == ["car", "house"] and "2 units left out" in seen["figures"]

    # The command line and campaign building read every automatic label.
    call_command("create_campaign", "every", "--network", "world", "--layers", "conv3", "--units", "disagree")
    assert Campaign.objects.get(name="every").hits.count() == 4, "none agrees: all four, withheld or not"
    records = export.unit_records("world")
    assert sorted(a["label"] for record in records for a in record["automatic"]) == sorted(IOUS)

    # Annotators never see them: the HIT page is the same byte for byte whichever the campaign says.
    hit = put_on_mturk("blind")[0]
    page = Client().get(f"/hit/{hit.key}/").content
    assert b"IoU" not in page and b"Network Dissection" not in page
    Campaign.objects.filter(pk=blind.pk).update(reviewers_see_automatic=True)
    assert Client().get(f"/hit/{hit.key}/").content == page
    assert auto_texts(pages(layer)["grid"]) == ["car", "house", "tree", "boat"]
    Campaign.objects.filter(pk=blind.pk).update(reviewers_see_automatic=False, status=Campaign.Status.FINISHED)
    assert auto_texts(pages(layer)["grid"]) == ["car", "house", "tree", "boat"], "a finished campaign shows them"


def test_a_presence_campaign_withholds_the_units_it_draws_for(layer) -> None:
    car = Unit.objects.get(layer=layer, index=0)
    Campaign.objects.create(
        name="p", network=layer.network, task="presence", status="published", reviewers_see_automatic=False
    )
    PresenceDraw.objects.create(
        campaign=Campaign.objects.get(name="p"), unit=car, label="car", image=Image.objects.first(), order=0,
        weight=1.0, activation=0.0, prior=0.05,
    )  # fmt: skip
    assert auto_texts(pages(layer)["grid"]) == ["house", "tree", "boat"]


def test_only_a_hit_manager_lifts_a_blind_review_and_every_change_is_logged(layer, capsys) -> None:
    call_command(
        "create_campaign", "blind", "--network", "world", "--layers", "conv3", "--images-per-hit", "20",
        "--hide-automatic",
    )  # fmt: skip
    blind = Campaign.objects.get(name="blind")
    action = reverse("dashboard-campaign-action", args=[blind.pk])
    page = reverse("dashboard-campaign", args=[blind.pk])
    reviewer, manager = client_in("reviewer"), client_in("paymaster")
    assert 'id="automatic-show"' not in reviewer.get(page).content.decode(), "no button for a reviewer"
    assert reviewer.post(action, {"action": "automatic", "show": "1"}).status_code == 403
    assert auto_texts(pages(layer)["grid"]) == [], "a reviewer cannot unblind themselves"
    for bad in ("", "yes", "2"):
        response = manager.post(action, {"action": "automatic", "show": bad}, follow=True)
        assert response.status_code == 200 and "Say show=1" in response.content.decode()
    assert not ReviewAction.objects.exists() and not Campaign.objects.get(pk=blind.pk).reviewers_see_automatic
    shown = manager.get(page).content.decode()
    assert "A blind review: the dashboard withholds" in shown and 'id="automatic-show"' in shown
    response = manager.post(action, {"action": "automatic", "show": "1"}, follow=True)
    assert "Reviewers now see the automatic labels of blind&#x27;s units." in response.content.decode()
    assert auto_texts(pages(layer)["grid"]) == list(IOUS)
    again = manager.post(action, {"action": "automatic", "show": "1"}, follow=True).content.decode()
    assert "Nothing changed" in again
    manager.post(action, {"action": "automatic", "show": "0"})
    assert auto_texts(pages(layer)["grid"]) == []
    log = [(a.action, a.actor, a.details) for a in ReviewAction.objects.order_by("id")]
    assert log == [
        ("show_automatic", "paymaster", {"campaign": "blind"}),
        ("hide_automatic", "paymaster", {"campaign": "blind"}),
    ]
    assert re.findall(r"<li>[^<]*: (\w+)", manager.get(page).content.decode().split('id="automatic-log"')[1]) == [
        "withhold",
        "show",
    ]
    # --exist-ok keeps the campaign as it is, and says what its reviewers see.
    call_command("create_campaign", "blind", "--network", "world", "--layers", "conv3", "--exist-ok")
    assert not Campaign.objects.get(pk=blind.pk).reviewers_see_automatic
    assert "Its reviewers do not see the automatic labels: its dashboard page changes that." in capsys.readouterr().out
