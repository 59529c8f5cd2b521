"""The migration that split `Campaign.backend` keeps every campaign, HIT, answer and worker as it was:
the backend becomes platform and environment, the platforms' records one `crowd_state`, HITs keep their
platform ids, and an MTurk worker gets the environment they worked in (one who worked in both becomes
two, each with their own answers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("annotator", "0010_prolific")]
AFTER = [("annotator", "0013_label_settings")]


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.fixture(autouse=True)
def latest_schema_after():
    """Leave the database at the newest migration, as the tests that follow expect it."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_every_campaign_hit_answer_and_worker_is_kept() -> None:
    old = migrate(BEFORE)
    Network, Layer, Unit = (old.get_model("annotator", n) for n in ("Network", "Layer", "Unit"))
    Campaign, Hit, Worker = (old.get_model("annotator", n) for n in ("Campaign", "Hit", "Worker"))
    Assignment, Answer = old.get_model("annotator", "Assignment"), old.get_model("annotator", "Answer")
    network = Network.objects.create(name="n", architecture="demo", input_size=64)
    unit = Unit.objects.create(layer=Layer.objects.create(network=network, name="conv3", num_units=1, order=0), index=0)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    campaigns = {
        name: Campaign.objects.create(
            name=name,
            network=network,
            backend=backend,
            mturk=mturk,
            prolific=prolific,
            mturk_synced_at=now if backend else None,
        )
        for name, backend, mturk, prolific in (
            ("s", "sandbox", {"hit_type_id": "3S"}, {}),
            ("p", "production", {"hit_type_id": "3P"}, {}),
            ("f", "prolific", {}, {"study_id": "a" * 24}),
            ("l", "local", {}, {}),
            ("d", "", {}, {}),
        )
    }
    hits = {
        name: Hit.objects.create(
            campaign=c, unit=unit, unit_images=5, mturk_hit_id=f"H{name.upper()}", mturk_status="Assignable"
        )
        for name, c in campaigns.items()
    }
    both = Worker.objects.create(kind="mturk", external_id="W1", blocked=True, blocked_reason="spam")
    only = Worker.objects.create(kind="mturk", external_id="W2")
    for name, worker, assignment in (("s", both, "A1"), ("p", both, "A2"), ("p", only, "A3")):
        opened = Assignment.objects.create(hit=hits[name], worker=worker, external_id=assignment, opened_at=now)
        Answer.objects.create(
            unit=unit,
            hit=hits[name],
            assignment=opened,
            worker=worker,
            source="mturk",
            description=f"car {assignment}",
            category="object",
            precision=1.0,
        )

    new = migrate(AFTER)
    Campaign, Hit, Worker, Answer = (new.get_model("annotator", n) for n in ("Campaign", "Hit", "Worker", "Answer"))
    rows = {c.name: (c.platform, c.environment, c.crowd_state, c.synced_at is not None) for c in Campaign.objects.all()}
    assert rows == {
        "s": ("mturk", "sandbox", {"hit_type_id": "3S"}, True),
        "p": ("mturk", "production", {"hit_type_id": "3P"}, True),
        "f": ("prolific", "", {"study_id": "a" * 24}, True),
        "l": ("local", "", {}, True),
        "d": ("", "", {}, False),
    }
    assert sorted(Hit.objects.values_list("remote_id", "remote_status")) == sorted(
        (f"H{name.upper()}", "Assignable") for name in campaigns
    )
    workers = {(w.external_id, w.environment): w for w in Worker.objects.all()}
    assert set(workers) == {("W1", "sandbox"), ("W1", "production"), ("W2", "production")}
    assert all(w.blocked for key, w in workers.items() if key[0] == "W1"), "a split worker keeps their block"
    owners = {a.description: (a.worker.external_id, a.worker.environment) for a in Answer.objects.all()}
    assert owners == {"car A1": ("W1", "sandbox"), "car A2": ("W1", "production"), "car A3": ("W2", "production")}
    assert Answer.objects.count() == 3
