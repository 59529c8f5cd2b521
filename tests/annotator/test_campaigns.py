"""Campaigns: HIT construction, the create_campaign and publish commands, and the dashboard form."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from annotator.models import Campaign, Hit, HitImage, TopImage
from tests.factories import concept_network

pytestmark = pytest.mark.django_db


@pytest.fixture
def network(world_dir):
    return concept_network(world_dir)


def test_one_hit_per_unit_with_own_images_and_gold_at_random_positions(network) -> None:
    call_command("create_campaign", "c1", "--network", "world", "--layers", "conv3", "--reward", "0.12")
    campaign = Campaign.objects.get(name="c1")
    assert (campaign.answers_per_unit, campaign.images_per_hit, campaign.gold_per_hit) == (3, 60, 3)
    assert campaign.reward == Decimal("0.12") and campaign.status == "draft"
    hits = list(campaign.hits.select_related("unit"))
    assert len(hits) == 6
    gold_positions = set()
    for hit in hits:
        slots = list(hit.slots.select_related("top_image"))
        assert [s.position for s in slots] == list(range(60))
        own = [s for s in slots if not s.gold]
        gold = [s for s in slots if s.gold]
        assert hit.unit_images == len(own) == 57 and len(gold) == 3
        assert {s.top_image.unit_id for s in own} == {hit.unit_id}
        assert {s.top_image.rank for s in own} == set(range(57))
        own_images = {s.top_image.image_id for s in own}
        # Gold: three other units, images this unit does not have.
        assert len({s.top_image.unit_id for s in gold}) == 3 and hit.unit_id not in {s.top_image.unit_id for s in gold}
        assert not own_images & {s.top_image.image_id for s in gold}
        gold_positions.add(tuple(s.position for s in gold))
    assert len(gold_positions) > 1, "gold images sit at the same positions in every HIT"


def test_same_seed_same_hits_other_seed_other_order(network) -> None:
    def layout(name: str, seed: str) -> list:
        call_command("create_campaign", name, "--network", "world", "--layers", "conv3", "--seed", seed)
        return list(
            HitImage.objects.filter(hit__campaign__name=name)
            .order_by("hit__unit", "position")
            .values_list("top_image_id", "gold")
        )

    first = layout("a", "1")
    Campaign.objects.get(name="a").delete()
    assert layout("a", "1") == first
    assert layout("b", "2") != first


def test_smaller_hits_and_fewer_images_than_slots(network) -> None:
    TopImage.objects.filter(unit__index=0, rank__gte=10).delete()
    call_command(
        "create_campaign",
        "small",
        "--network",
        "world",
        "--layers",
        "conv3",
        "--images-per-hit",
        "20",
        "--gold-per-hit",
        "2",
        "--answers-per-unit",
        "5",
    )
    hits = {h.unit.index: h for h in Hit.objects.filter(campaign__name="small").select_related("unit")}
    assert hits[0].unit_images == 10 and hits[0].slots.count() == 12
    assert hits[1].unit_images == 18 and hits[1].slots.count() == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--network", "nope", "--layers", "conv3"], "No network named 'nope' (known: world)"),
        (["--network", "world", "--layers", "conv3,fc9"], "Unknown layer(s) fc9 of world; it has conv3"),
        (
            ["--network", "world", "--layers", "conv3", "--gold-per-hit", "60"],
            "--gold-per-hit must be between 0 and 59",
        ),
        (
            ["--network", "world", "--layers", "conv3", "--answers-per-unit", "0"],
            "--answers-per-unit must be at least 1",
        ),
    ],
)
def test_create_campaign_errors(network, args, message) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("create_campaign", "bad", *args)
    assert not Campaign.objects.exists()


def test_unsegmented_layer_and_duplicate_name_are_refused(network) -> None:
    from annotator.models import Layer, ReceptiveField

    Layer.objects.create(network=network, name="pool5", order=1)
    with pytest.raises(CommandError, match="pool5 of world have no segmented units"):
        call_command("create_campaign", "x", "--network", "world", "--layers", "pool5")
    call_command("create_campaign", "x", "--network", "world", "--layers", "conv3")
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_campaign", "x", "--network", "world", "--layers", "conv3")
    # A unit whose segmentation is not finished gets no HIT.
    ReceptiveField.objects.filter(unit__index=5).delete()
    call_command("create_campaign", "y", "--network", "world", "--layers", "conv3")
    assert Hit.objects.filter(campaign__name="y").count() == 5


def test_publish_local(network, capsys) -> None:
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3")
    call_command("publish", "c", "--backend", "local")
    campaign = Campaign.objects.get(name="c")
    assert (campaign.platform, campaign.status) == ("local", "published") and campaign.published_at
    assert "6 HITs, 0 of 18 answers in" in capsys.readouterr().out
    call_command("publish", "c", "--backend", "local")  # again: nothing changes
    assert Campaign.objects.get(name="c").published_at == campaign.published_at
    with pytest.raises(CommandError, match="published on local already"):
        call_command("publish", "c", "--backend", "sandbox")
    with pytest.raises(CommandError, match="No campaign named 'zz' \\(known: c\\)"):
        call_command("publish", "zz")


def test_dashboard_creates_and_publishes_campaigns(network, admin_client) -> None:
    layer = network.layers.get()
    data = {
        "name": "from-admin",
        "network": network.pk,
        "layers": [layer.pk],
        "answers_per_unit": 2,
        "images_per_hit": 30,
        "gold_per_hit": 2,
        "reward": "0.05",
        "assignment_minutes": 20,
        "instructions": "",
    }
    response = admin_client.post("/admin/annotator/campaign/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="from-admin")
    assert campaign.hits.count() == 6 and campaign.hits.first().slots.count() == 30
    bad = admin_client.post("/admin/annotator/campaign/add/", {**data, "name": "other", "gold_per_hit": 30})
    assert bad.status_code == 200 and b"--gold-per-hit must be between 0 and 29" in bad.content
    listing = admin_client.get("/admin/annotator/campaign/")
    assert b"0/6 HITs done, 0/12 answers" in listing.content
    admin_client.post("/admin/annotator/campaign/", {"action": "publish_local", "_selected_action": [campaign.pk]})
    assert Campaign.objects.get(pk=campaign.pk).status == "published"
