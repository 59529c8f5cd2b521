"""The simulated crowd answers through the real pages over HTTP, and its scores mean what they say."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotator.models import Answer, Assignment, Campaign
from annotator.services.simulated_crowd import CrowdSettings, crowd_simulate
from annotator.task_kinds.describe_simulation import campaign_truth
from pipeline import crowd
from tests.factories import concept_network

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def campaign(world_dir) -> Campaign:
    concept_network(world_dir, concepts=("car", "house", "tree", "sky"), per_unit=20, matching=0.8)
    call_command(
        "create_campaign",
        "c",
        "--network",
        "world",
        "--layers",
        "conv3",
        "--images-per-hit",
        "22",
        "--gold-per-hit",
        "2",
    )
    call_command("publish", "c", "--backend", "local")
    return Campaign.objects.get(name="c")


def test_truth_is_the_concept_the_masks_cover(campaign) -> None:
    truths = campaign_truth(campaign)
    by_unit = {hit.unit.index: truths[hit.pk] for hit in campaign.hits.select_related("unit")}
    assert [by_unit[i].truth.concept for i in range(4)] == ["car", "house", "tree", "sky"]
    assert by_unit[0].truth.category == "object" and by_unit[3].truth.category == "region"
    assert by_unit[0].truth.precision == pytest.approx(0.8)


def test_careful_workers_give_the_truth(campaign) -> None:
    report = crowd_simulate(campaign=campaign, settings=CrowdSettings(workers=4, spammers=0, noise=0))
    assert report.answers == 12 == Answer.objects.count()
    assert Assignment.objects.filter(status="submitted").count() == 12
    assert len(set(Answer.objects.values_list("worker_id", "unit_id"))) == 12
    for method in ("majority", "dawid-skene"):
        score = report.scores[method]
        assert (score["label_accuracy"], score["category_accuracy"], score["units"]) == (1.0, 1.0, 4)
        assert score["precision_error"] == pytest.approx(0.0)
    assert all(a.gold_passed for a in Answer.objects.all())


def test_spammers_and_noise_cost_accuracy(campaign) -> None:
    report = crowd_simulate(campaign=campaign, settings=CrowdSettings(workers=6, spammers=0.5, noise=0.3, seed=3))
    assert report.answers == 12
    score = report.scores["majority"]
    assert score["precision_error"] > 0.02
    assert score["label_accuracy"] < 1.0 or score["category_accuracy"] < 1.0


def test_honest_and_spamming_workers() -> None:
    truth = crowd.UnitTruth("car", "object", (True, False, True))
    rng = np.random.default_rng(0)
    honest = crowd.SimulatedWorker("h", False, 0.0, rng).answer(truth, [5, 6, 7], [1, 2])
    assert (honest.category, honest.marked) == ("object", [1, 2, 6])
    assert honest.description.strip().lower().startswith(("car", "a bunch of car"))


def test_the_crowd_needs_a_published_local_campaign_and_the_truth(campaign, tmp_path) -> None:
    Campaign.objects.update(status="draft")
    with pytest.raises(CommandError, match="Publish 'c' locally first"):
        call_command("simulate_crowd", "c")
    Campaign.objects.update(status="published")
    with pytest.raises(CommandError, match="--workers must be at least"):
        call_command("simulate_crowd", "c", "--workers", "2")
