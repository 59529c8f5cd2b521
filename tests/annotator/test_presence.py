"""The presence task end to end: a campaign drawn from an earlier campaign's labels, rated by simulated
workers over the real HTTP form, aggregated into each unit's correlation beyond its top images; and
every bad input refused whole."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotator.models import Campaign, Hit, HitImage, PresenceDraw, UnitEvaluation
from annotator.services import artifacts
from annotator.services.simulated_crowd import CrowdSettings, crowd_simulate
from annotator.task_kinds import task_for
from annotator.task_kinds.presence_simulation import true_correlations
from tests.factories import presence_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def network(world_dir):
    return presence_world(world_dir)


def create(*extra: str, name: str = "p") -> Campaign:
    call_command("create_campaign", name, "--task", "presence", "--from", "c", "--images", "60", *extra)
    return Campaign.objects.get(name=name)


def publish(campaign: Campaign) -> None:
    call_command("publish", campaign.name, "--backend", "local")
    campaign.refresh_from_db()


def write_csv(path, header, rows) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def test_hits_ask_one_label_each_with_gold_and_no_sign_of_the_source(network) -> None:
    campaign = create()
    assert campaign.task == "presence" and campaign.task_settings["probe_size"] == 240
    assert PresenceDraw.objects.filter(campaign=campaign).count() == 4 * 60
    for hit in campaign.hits.all():
        slots = list(HitImage.objects.filter(hit=hit))
        assert hit.unit_id is None and hit.label in {"car", "house", "tree", "sky"}
        assert len(slots) <= 15 and sum(s.gold for s in slots) == 2
        assert {s.truth for s in slots if s.gold} == {True, False}, "one gold image with the label, one without"
        assert all(s.picture and artifacts.exists(s.picture) and s.top_image_id is None for s in slots)
        assert (
            task_for(campaign).units_of(hit)
            == [u for u in network.layers.get().units.order_by("index").values_list("pk", flat=True)][
                ["car", "house", "tree", "sky"].index(hit.label) :
            ][:1]
        )
    asked = [(h.label, s.image_id) for h in campaign.hits.all() for s in h.slots.all() if not s.gold]
    assert len(asked) == len(set(asked)), "an image is asked about a label once, however often it was drawn"
    drawn = set(PresenceDraw.objects.filter(campaign=campaign).values_list("label", "image_id"))
    assert set(asked) == drawn


def test_simulated_raters_give_each_unit_its_correlation_beyond_the_top(network) -> None:
    campaign = create()
    publish(campaign)
    report = crowd_simulate(campaign=campaign, settings=CrowdSettings(workers=3, spammers=0, noise=0.1, seed=2))
    assert report.answers == 3 * campaign.hits.count()
    truth = true_correlations(campaign)
    rows = {e.unit_id: e for e in UnitEvaluation.objects.filter(campaign=campaign)}
    assert set(rows) == set(truth) and len(rows) == 4
    for unit_id, row in rows.items():
        assert row.rho_low <= row.rho <= row.rho_high
        assert abs(row.rho - truth[unit_id]) < 0.25, (row.label, row.rho, truth[unit_id])
        assert row.images == 60, "every draw rated (an image drawn twice counts twice, with its weight)"
        assert row.paper_precision == pytest.approx(0.8) and row.flags == []
    assert 0.03 <= rows[next(iter(rows))].flip <= 0.2, "the gold answers measure the flip rate"
    assert report.scores["presence"]["median_relative_error"] < 0.35, "60 images a unit: the error bar is wide"


def test_with_top_asks_the_top_images_too_and_scores_them(network) -> None:
    campaign = create("--with-top")
    unit = network.layers.get().units.get(index=0)
    top = PresenceDraw.objects.filter(campaign=campaign, unit=unit, top=True)
    assert top.count() == unit.top_images.count() == 20 and {d.weight for d in top} == {1.0}
    publish(campaign)
    crowd_simulate(campaign=campaign, settings=CrowdSettings(workers=3, spammers=0, noise=0.0))
    row = UnitEvaluation.objects.get(campaign=campaign, unit=unit)
    assert row.precision == pytest.approx(0.8), "16 of the 20 top images show a car (the factory's 80%)"
    assert 0 < row.recall <= 1 and 0 < row.f1 <= 1 and 0 < row.iou <= 1
    assert row.base_rate == pytest.approx(np.mean([True]), abs=1) and 0 < row.base_rate < 1


def test_a_label_that_holds_only_at_the_top_is_flagged(world_dir) -> None:
    presence_world(world_dir, strength=0.0)  # pure noise: the labels describe nothing beyond the top images
    campaign = create()
    publish(campaign)
    crowd_simulate(campaign=campaign, settings=CrowdSettings(workers=3, spammers=0, noise=0.0))
    flagged = [e for e in UnitEvaluation.objects.filter(campaign=campaign) if "holds only at the top" in e.flags]
    assert len(flagged) >= 3


def test_bad_files_and_requests_are_refused_whole(network, tmp_path) -> None:
    names = list(network.dissection.image_set.images.order_by("id").values_list("path", flat=True))
    bad = write_csv(
        tmp_path / "proxy.csv",
        ["image", "label", "score"],
        [[names[0], "car", "0.5"], ["nowhere.png", "car", "0.2"], [names[1], "boat", "0.1"]],
    )
    bad_score = write_csv(tmp_path / "score.csv", ["image", "label", "score"], [[names[0], "car", "1.5"]])
    bad_gold = write_csv(tmp_path / "gold.csv", ["image", "label", "present"], [[names[0], "car", "maybe"]])
    no_header = write_csv(tmp_path / "header.csv", ["picture", "label"], [[names[0], "car"]])
    cases = [
        (("--proxy", bad), "line 3: image 'nowhere.png' is not in the dissection's probe set"),
        (("--proxy", bad), "line 4: label 'boat' is none of the campaign's labels"),
        (("--proxy", bad_score), "line 2: score '1.5' is not a number in [0, 1]"),
        (("--gold", bad_gold), "line 2: present 'maybe' is not yes or no"),
        (("--proxy", no_header), "has no column image, score"),
        (("--proxy", str(tmp_path / "missing.csv")), "Cannot read the proxy file"),
        (("--images", "500"), "has 240 readable images, fewer than the 500"),
    ]
    for extra, message in cases:
        with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
            call_command("create_campaign", "p", "--task", "presence", "--from", "c", *extra)
        assert not Campaign.objects.filter(name="p").exists() and not PresenceDraw.objects.exists()
    with pytest.raises(CommandError, match="No campaign named 'nope'"):
        call_command("create_campaign", "p", "--task", "presence", "--from", "nope")
    with pytest.raises(CommandError, match="give --from CAMPAIGN"):
        call_command("create_campaign", "p", "--task", "presence")
    Campaign.objects.create(name="empty", network=network)
    with pytest.raises(CommandError, match="'empty' has no aggregated labels"):
        call_command("create_campaign", "p", "--task", "presence", "--from", "empty")
    assert not Hit.objects.filter(campaign__task="presence").exists()


def test_a_proxy_guides_the_draws_and_sets_the_prior(network, tmp_path) -> None:
    names = list(network.dissection.image_set.images.order_by("id").values_list("path", flat=True))
    rows = [[name, "car", "0.9" if name.startswith("car") else "0.0"] for name in names]
    proxy = write_csv(tmp_path / "proxy.csv", ["image", "label", "score"], rows)
    campaign = create("--proxy", proxy)
    draws = PresenceDraw.objects.filter(campaign=campaign, label="car").select_related("image")
    assert {d.prior for d in draws} <= {0.9, 0.001}
    others = PresenceDraw.objects.filter(campaign=campaign, label="tree")
    assert {d.prior for d in others} == {0.05}, "a label the proxy does not name keeps the default prior"
    assert json.loads(json.dumps(campaign.task_settings))["proxy"] == proxy


def test_the_dashboard_and_exports_show_each_labels_score_beyond_the_top(network, admin_client, tmp_path) -> None:
    campaign = create()
    publish(campaign)
    crowd_simulate(campaign=campaign, settings=CrowdSettings(workers=3, spammers=0, noise=0.1, seed=1))
    layer = network.layers.get()
    rows = {e.unit.index: e for e in UnitEvaluation.objects.filter(campaign=campaign).select_related("unit")}
    unit = layer.units.get(index=0)
    page = admin_client.get(f"/dashboard/unit/{unit.pk}/").content.decode()
    assert 'id="evaluation-p"' in page and f'<b id="rho">{rows[0].rho:.2f}</b>' in page
    assert f"{rows[0].rho_low:.2f} to {rows[0].rho_high:.2f}" in page
    assert page.count('<tr><td><img class="draw-thumb"') == 60, "every draw, with its picture, weight and ratings"
    assert page.index('id="evaluation-p"') < page.index("<h2>Top images</h2>"), "the evidence comes first"

    by_rho = admin_client.get(f"/dashboard/layer/{layer.pk}/", {"sort": "rho", "order": "desc"}).content.decode()
    shown = [int(i) for i in re.findall(r'data-unit="(\d+)" data-precision', by_rho)]
    assert shown == sorted(rows, key=lambda i: -rows[i].rho)
    cut = sorted(r.rho for r in rows.values())[1]
    filtered = admin_client.get(f"/dashboard/layer/{layer.pk}/", {"min_rho": f"{cut:.6f}"}).content.decode()
    kept = [int(i) for i in re.findall(r'data-unit="(\d+)" data-precision', filtered)]
    assert sorted(kept) == sorted(i for i, r in rows.items() if r.rho >= cut) and len(kept) == 3
    figures = admin_client.get(f"/dashboard/network/{network.pk}/figures/").content.decode()
    assert figures.count('href="/dashboard/unit/') >= 4 and 'id="figure-beyond-top"' in figures
    for index in rows:
        assert f'data-unit="{index}"' in figures

    overview = admin_client.get(f"/dashboard/campaign/{campaign.pk}/")
    assert overview.status_code == 200 and "all-same" in overview.content.decode(), "its own review rules"

    out = tmp_path / "units.json"
    call_command("export", "--network", "world", "--format", "json", "--output", str(out))
    records = {r["unit"]: r for r in json.loads(out.read_text())}
    assert records[0]["beyond_top"][0]["campaign"] == "p"
    assert records[0]["beyond_top"][0]["rho"] == pytest.approx(rows[0].rho, abs=1e-4)
    table = tmp_path / "units.csv"
    call_command("export", "--network", "world", "--format", "csv", "--output", str(table))
    assert "rho,rho_low,rho_high,f1,iou,base_rate,holds_only_at_top" in table.read_text().splitlines()[0]
    first = next(csv.DictReader(table.open()))
    assert float(first["rho"]) == pytest.approx(rows[0].rho, abs=1e-4) and first["holds_only_at_top"] == "False"
