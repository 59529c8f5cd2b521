"""Who may do what on the dashboard: every page and action needs its own permission, the groups
"reviewer" and "paymaster" hold theirs, and a staff account without them changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from annotator.models import Answer, Campaign, ReviewAction, UnitLabel, Worker
from tests.factories import answer_hit, concept_network

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(world_dir) -> dict:
    network = concept_network(world_dir, concepts=("car",))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--answers-per-unit", "1")
    call_command("publish", "c", "--backend", "local")
    campaign = Campaign.objects.get(name="c")
    answer = answer_hit(campaign.hits.get(), "w1", "car", "object")
    return {
        "network": network,
        "campaign": campaign,
        "answer": answer,
        "unit": answer.unit_id,
        "layer": answer.unit.layer_id,
        "worker": answer.worker_id,
    }


PAGES = [
    lambda w: "/dashboard/",
    lambda w: f"/dashboard/layer/{w['layer']}/",
    lambda w: f"/dashboard/unit/{w['unit']}/",
    lambda w: f"/dashboard/campaign/{w['campaign'].pk}/",
    lambda w: f"/dashboard/network/{w['network'].pk}/figures/",
    lambda w: f"/dashboard/layer/{w['layer']}/netdissect/",
]
ACTIONS = {  # name -> (url, form, the permission's words in the refusal)
    "accept": (lambda w: f"/dashboard/unit/{w['unit']}/review/", {"action": "accept"}, "review units"),
    "override": (
        lambda w: f"/dashboard/unit/{w['unit']}/review/",
        {"action": "override", "label": "x"},
        "review units",
    ),
    "send back": (
        lambda w: f"/dashboard/unit/{w['unit']}/review/",
        {"action": "send_back", "more": "1"},
        "review units",
    ),
    "reject": (lambda w: f"/dashboard/answer/{w['answer'].pk}/reject/", {"feedback": "no"}, "review units"),
    "approve": (lambda w: f"/dashboard/answer/{w['answer'].pk}/approve/", {}, "review units"),
    "review by rule": (
        lambda w: f"/dashboard/campaign/{w['campaign'].pk}/action/",
        {"action": "review", "approve_passing": "1"},
        "review units",
    ),
    "sync": (lambda w: f"/dashboard/campaign/{w['campaign'].pk}/action/", {"action": "sync"}, "review units"),
    "bonus": (lambda w: f"/dashboard/answer/{w['answer'].pk}/bonus/", {"amount": "1", "reason": "good"}, "pay bonuses"),
    "block": (
        lambda w: f"/dashboard/worker/{w['worker']}/",
        {"action": "block", "reason": "spam"},
        "block and unblock",
    ),
    "expire": (
        lambda w: f"/dashboard/campaign/{w['campaign'].pk}/action/",
        {"action": "expire"},
        "expire, extend and delete",
    ),
    "delete": (
        lambda w: f"/dashboard/campaign/{w['campaign'].pk}/action/",
        {"action": "delete"},
        "expire, extend and delete",
    ),
}
ALLOWED = {
    "reviewer": {"accept", "override", "send back", "reject", "approve", "review by rule", "sync", "block"},
    "paymaster": {"bonus", "expire", "delete"},
}


def signed_in(username: str, groups: tuple[str, ...] = (), superuser: bool = False) -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True, is_superuser=superuser)
    user.groups.add(*Group.objects.filter(name__in=groups))
    client = Client()
    client.force_login(user)
    return client


def state() -> tuple:
    """Everything an action could change."""
    return (
        ReviewAction.objects.count(),
        list(Answer.objects.values_list("review", "counts")),
        list(UnitLabel.objects.values_list("review_label", "review_status")),
        list(Worker.objects.values_list("blocked", flat=True)),
    )


def test_the_groups_exist_after_migrate() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= {"reviewer", "paymaster"}
    assert Group.objects.get(name="paymaster").permissions.filter(codename="pay_workers").exists()


def test_staff_without_permissions_reads_and_changes_nothing(world) -> None:
    client = signed_in("staff-only")
    for page in PAGES:
        response = client.get(page(world))
        assert response.status_code == 403 and "Can read the review dashboard" in response.content.decode()
    before = state()
    for name, (url, form, words) in ACTIONS.items():
        response = client.post(url(world), form)
        assert response.status_code == 403 and words in response.content.decode(), name
    assert state() == before


def test_visitors_who_are_not_staff_are_sent_to_sign_in(world) -> None:
    user = User.objects.create_user("annotator", password="pw")
    client = Client()
    client.force_login(user)
    for page in PAGES[:2]:
        response = client.get(page(world))
        assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert client.post(ACTIONS["reject"][0](world), {"feedback": "no"}).status_code == 302
    assert Answer.objects.get().review == "submitted"


@pytest.mark.parametrize("group", ["reviewer", "paymaster"])
def test_each_group_does_its_own_acts_and_no_others(world, group) -> None:
    client = signed_in(group, (group,))
    for page in PAGES:
        assert client.get(page(world)).status_code == 200
    unit_page = client.get(PAGES[2](world)).content.decode()
    assert ("Accept the crowd" in unit_page) == (group == "reviewer")
    for name, (url, form, _) in ACTIONS.items():
        response = client.post(url(world), form)
        assert (response.status_code != 403) == (name in ALLOWED[group]), name


def test_a_reviewer_rejects_and_a_superuser_may_do_everything(world) -> None:
    reviewer = signed_in("rita", ("reviewer",))
    url, form, _ = ACTIONS["reject"]
    reviewer.post(url(world), form)
    assert Answer.objects.get().review == "rejected"
    boss = signed_in("boss", superuser=True)
    for name, (url, form, _) in ACTIONS.items():
        assert boss.post(url(world), form).status_code != 403, name
