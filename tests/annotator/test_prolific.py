"""A campaign on Prolific, against the local Prolific: publishing (cost first, dry run, idempotent), the
participant's way through (ids checked, a unit never twice, the completion code at the end), answers
that count only once Prolific lists the submission, returns that free HITs, review by rule with
Prolific's rejection rules, bulk bonuses paid once, and blocking through a participant group."""

from __future__ import annotations

import io
import secrets
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from annotator.models import Answer, Assignment, Campaign, ProlificSession, Worker
from annotator.selectors.dashboard import campaign_money
from annotator.services.workers import worker_block
from tests.factories import concept_network

pytestmark = pytest.mark.django_db(transaction=True)

EXTERNAL = "http://127.0.0.1:8000"
LONG_FEEDBACK = (
    "Most of the images you were asked to check were left unmarked, including the three that clearly "
    "show something else; the instructions ask you to mark every image that does not match."
)


@pytest.fixture
def campaign(world_dir, prolific_service) -> Campaign:
    concept_network(world_dir, concepts=("car", "house", "tree", "boat"))
    call_command(
        "create_campaign",
        "p",
        "--network",
        "world",
        "--layers",
        "conv3",
        "--images-per-hit",
        "12",
        "--answers-per-unit",
        "2",
    )
    call_command(
        "publish", "p", "--backend", "prolific", "--external-url", EXTERNAL, "--hits-per-participant", "2", "--yes"
    )
    return Campaign.objects.get(name="p")


def take(client: Client, service, campaign: Campaign, participant: str) -> str:
    """The participant opens the study from Prolific: the service starts their submission and sends
    them to our study URL with the three ids; returns the HIT page our start page redirects to."""
    target = service._start(campaign.crowd_state["study_id"], participant)
    parts = urlsplit(target)
    response = client.get(parts.path, dict(parse_qs(parts.query)))
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


def answer(client: Client, url: str, *, mark_gold: bool = True, description: str = "car") -> str:
    """Answer the HIT the page shows; returns where the page sends the participant next."""
    page = client.get(url)
    assert page.status_code == 200
    gold = [str(p) for p in page.context["page"].hit.slots.filter(gold=True).values_list("position", flat=True)]
    token = page.context["page"].hidden["assignment"]
    response = client.post(
        url,
        {"assignment": token, "description": description, "category": "object", "mismatch": gold if mark_gold else []},
    )
    if not mark_gold:  # the gold warnings, then the third try is stored as it is
        for _ in range(2):
            response = client.post(url, {"assignment": token, "description": description, "category": "object"})
    assert response.status_code == 302, response.content[:500]
    following = client.get(response["Location"])  # the next HIT, or the last page with the code
    if "back" in (following.context or {}):  # the last page: its way back to Prolific
        assert following.context["code"] in following.content.decode()
        return following.context["back"]
    return response["Location"]


def test_publish_shows_the_cost_first_and_is_idempotent(world_dir, prolific_service, capsys, settings) -> None:
    concept_network(world_dir, concepts=("car", "house", "tree", "boat"))
    call_command(
        "create_campaign", "p", "--network", "world", "--layers", "conv3", "--answers-per-unit", "3", "--reward", "0.15"
    )
    call_command("publish", "p", "--backend", "prolific", "--external-url", EXTERNAL, "--dry-run")
    out = capsys.readouterr().out
    # 4 units x 3 answers / 10 HITs a participant = 2 places; $1.50 a participant; Prolific's quote with its fee.
    assert "2 places x up to 10 HITs each, $1.50 a participant" in out and "$4.00 with fees" in out
    assert "Prolific's cost calculator" in out and prolific_service.studies == {}
    with pytest.raises(CommandError, match="spends money"):
        call_command("publish", "p", "--backend", "prolific", "--external-url", EXTERNAL)
    settings.PROLIFIC_WORKSPACE_ID = "w" * 24  # where blocked participants are kept
    call_command(
        "publish",
        "p",
        "--backend",
        "prolific",
        "--external-url",
        EXTERNAL,
        "--yes",
        "--min-approval-rate",
        "98",
        "--language",
        "19",
    )
    (study,) = prolific_service.studies.values()
    assert study["status"] == "ACTIVE" and study["total_available_places"] == 2 and study["reward"] == 150
    assert study["external_study_url"].startswith(f"{EXTERNAL}/prolific/")
    assert (
        "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
        in study["external_study_url"]
    )
    assert {"filter_id": "approval_rate", "selected_range": {"lower": 98, "upper": 100}} in study["filters"]
    assert {"filter_id": "fluent-languages", "selected_values": ["19"]} in study["filters"]
    (group,) = prolific_service.groups.values()
    assert {"filter_id": "participant_group_blocklist", "selected_values": [group["id"]]} in study["filters"]
    campaign = Campaign.objects.get(name="p")
    assert campaign.platform == "prolific" and campaign.status == "published"
    assert campaign.crowd_state["study_id"] == study["id"]
    calls = list(prolific_service.calls)
    call_command("publish", "p", "--backend", "prolific", "--external-url", EXTERNAL, "--yes")
    assert [
        c for c in prolific_service.calls[len(calls) :] if not c.startswith(("GET", "POST /api/v1/study-cost"))
    ] == [], "a re-run changes nothing"
    # A crash after Prolific created the study but before we stored its id: the re-run finds it.
    Campaign.objects.filter(pk=campaign.pk).update(crowd_state={})
    call_command("publish", "p", "--backend", "prolific", "--external-url", EXTERNAL, "--yes")
    assert len(prolific_service.studies) == 1
    assert Campaign.objects.get(pk=campaign.pk).crowd_state["study_id"] == study["id"]


def test_a_participant_answers_their_share_and_goes_back_with_the_code(campaign, prolific_service) -> None:
    client = Client()
    url = take(client, prolific_service, campaign, secrets.token_hex(12))
    first = answer(client, url)
    assert first == url, "the next HIT follows"
    done = answer(client, first)
    code = campaign.crowd_state["completion_code"]
    assert done == f"{prolific_service.url}/submissions/complete?cc={code}"
    answers = list(Answer.objects.all())
    assert len(answers) == 2 and len({a.unit_id for a in answers}) == 2, "two HITs, two different units"
    assert all(a.source == "prolific" and a.confirmation == "unconfirmed" and not a.counts for a in answers)
    assert not Assignment.objects.filter(status="open").exists()
    # The last page shows the code and goes back to Prolific by itself; opening the link again after
    # finishing shows it again, not another HIT.
    again = client.get(url).content.decode()
    assert f'id="completion-code">{code}<' in again and f'href="{done}"' in again
    assert f'http-equiv="refresh" content="4;url={done}"' in again


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"PROLIFIC_PID": "nope", "STUDY_ID": "x", "SESSION_ID": "y"}, "valid PROLIFIC_PID"),
        ({"PROLIFIC_PID": "a" * 24, "STUDY_ID": "b" * 24, "SESSION_ID": "c" * 24}, "belongs to another study"),
        ({"PROLIFIC_PID": "a" * 24}, "valid STUDY_ID"),
    ],
)
def test_the_study_link_is_checked(campaign, params, error) -> None:
    response = Client().get(f"/prolific/{campaign.pk}/", params)
    assert response.status_code == 400 and error in response.content.decode()
    assert not ProlificSession.objects.exists()
    assert Client().get(f"/prolific/{campaign.pk}/hit/", {"t": "forged"}).status_code == 400
    assert (
        Client().post(f"/prolific/{campaign.pk}/hit/?t=forged", {"assignment": "x", "description": "car"}).status_code
        == 400
    )
    assert Client().get(f"/prolific/{campaign.pk + 1000}/", params).status_code == 404


def test_sync_confirms_listed_participants_and_frees_returned_ones(campaign, prolific_service) -> None:
    real, quitter = secrets.token_hex(12), secrets.token_hex(12)
    answer(Client(), take(Client(), prolific_service, campaign, real))
    quitting = Client()
    assert quitting.get(answer(quitting, take(quitting, prolific_service, campaign, quitter))).status_code == 200
    assert Assignment.objects.filter(worker__external_id=quitter, status="open").exists()  # a second HIT open
    # A made-up participant, and a real one's id beside a made-up session: Prolific does not list them,
    # so our page opens nothing for them and they hold no HIT.
    workers = Worker.objects.count()
    for pid in (secrets.token_hex(12), real):
        study = campaign.crowd_state["study_id"]
        refused = Client().get(
            f"/prolific/{campaign.pk}/", {"PROLIFIC_PID": pid, "STUDY_ID": study, "SESSION_ID": secrets.token_hex(12)}
        )
        assert refused.status_code == 400 and "Prolific does not know this session" in refused.content.decode()
    assert Worker.objects.count() == workers and ProlificSession.objects.count() == 2
    prolific_service.set_status(quitter, "RETURNED")
    call_command("sync", "p")
    mine = Answer.objects.get(worker__external_id=real)
    assert mine.confirmation == "confirmed" and mine.counts
    theirs = Answer.objects.get(worker__external_id=quitter)
    assert theirs.held == "returned" and not theirs.counts and "returned" in theirs.excluded_because
    assert not Assignment.objects.filter(worker__external_id=quitter, status="open").exists(), "their HIT is free"
    assert not Assignment.objects.filter(worker__external_id=quitter).exclude(slot=None).exists(), "answered too"
    before = list(Answer.objects.order_by("id").values_list("confirmation", "held", "counts", "review"))
    call_command("sync", "p")
    assert list(Answer.objects.order_by("id").values_list("confirmation", "held", "counts", "review")) == before


def finish(client: Client, service, campaign: Campaign, participant: str, *, careful: bool) -> None:
    url = take(client, service, campaign, participant)
    for _ in range(2):
        url = answer(client, url, mark_gold=careful)
    assert url.endswith(f"?cc={campaign.crowd_state['completion_code']}")
    service._complete(participant, campaign.crowd_state["completion_code"])  # the browser reaches Prolific


def test_review_by_rule_pays_the_careful_and_rejects_by_prolifics_rules(campaign, prolific_service, capsys) -> None:
    careful, careless = secrets.token_hex(12), secrets.token_hex(12)
    finish(Client(), prolific_service, campaign, careful, careful=True)
    finish(Client(), prolific_service, campaign, careless, careful=False)
    call_command("sync", "p")
    with pytest.raises(CommandError, match="at least 100 characters"):
        call_command("review", "p", "--reject-rule", "gold-failed", "--feedback", "Unmarked gold images.")
    assert all(s["status"] == "AWAITING REVIEW" for s in prolific_service.submissions.values()), "nothing was sent"
    call_command("review", "p", "--reject-rule", "gold-failed", "--approve-passing", "--feedback", LONG_FEEDBACK)
    assert "1 participants' submissions were rejected, 1 approved" in capsys.readouterr().out
    by_pid = {s["participant_id"]: s for s in prolific_service.submissions.values()}
    assert by_pid[careful]["status"] == "APPROVED"
    assert by_pid[careless]["status"] == "REJECTED" and by_pid[careless]["category"] == "FAILED_CHECK"
    assert by_pid[careless]["message"] == LONG_FEEDBACK
    rejected = Answer.objects.filter(worker__external_id=careless)
    assert all(a.review == "rejected" and not a.counts for a in rejected)
    assert not Assignment.objects.filter(answer__in=rejected).exclude(slot=None).exists(), "their HITs go to others"
    assert all(a.review == "approved" for a in Answer.objects.filter(worker__external_id=careful))
    money = campaign_money(campaign)
    assert money.platform == "Prolific" and money.approved == 1 and money.spent == Decimal("0.27")  # $0.20 + 33.3%
    call_command("review", "p", "--reject-rule", "gold-failed", "--approve-passing", "--feedback", LONG_FEEDBACK)
    assert "0 participants' submissions were rejected, 0 approved" in capsys.readouterr().out
    with pytest.raises(CommandError, match="approved already"):
        call_command("review", "p", "--reject", careful, "--feedback", LONG_FEEDBACK)


def test_bonuses_go_out_in_one_bulk_payment_once(campaign, prolific_service, capsys) -> None:
    first, second = secrets.token_hex(12), secrets.token_hex(12)
    finish(Client(), prolific_service, campaign, first, careful=True)
    finish(Client(), prolific_service, campaign, second, careful=True)
    call_command(
        "bonus", "--campaign", "p", "--participants", first, second, "--amount", "0.50", "--reason", "Careful work"
    )
    assert "Paid $1.00 in bonuses to 2 participants in one bulk payment" in capsys.readouterr().out
    (bulk,) = prolific_service.bulk.values()
    assert bulk["paid"] and bulk["amounts"] == {first: Decimal("0.50"), second: Decimal("0.50")}
    call_command(
        "bonus", "--campaign", "p", "--participants", first, second, "--amount", "0.50", "--reason", "Careful work"
    )
    assert len(prolific_service.bulk) == 1, "the same bonuses again pay nothing"
    with pytest.raises(CommandError, match="Not participants"):
        call_command("bonus", "--campaign", "p", "--participants", "f" * 24, "--amount", "0.50", "--reason", "x")
    with pytest.raises(CommandError, match=r"A bonus is between \$0.01 and \$100.00"):
        call_command("bonus", "--campaign", "p", "--participants", first, "--amount", "0", "--reason", "x")


def test_blocking_uses_a_participant_group(campaign, prolific_service, settings) -> None:
    participant = secrets.token_hex(12)
    url = take(Client(), prolific_service, campaign, participant)
    worker = Worker.objects.get(external_id=participant)
    with pytest.raises(Exception, match="PROLIFIC_WORKSPACE_ID"):
        worker_block(worker_id=worker.pk, reviewer_name="r", reason="spam")
    settings.PROLIFIC_WORKSPACE_ID = "w" * 24
    worker_block(worker_id=worker.pk, reviewer_name="r", reason="spam")
    (group,) = prolific_service.groups.values()
    assert group["participants"] == [participant]
    assert Client().get(url).status_code == 403, "a blocked participant gets no more HITs"
    worker_block(worker_id=worker.pk, reviewer_name="r", reason="", block=False)
    assert prolific_service.groups[group["id"]]["participants"] == []


def test_the_campaign_page_decides_one_participant(campaign, prolific_service, admin_client) -> None:
    participant = secrets.token_hex(12)
    finish(Client(), prolific_service, campaign, participant, careful=True)
    said = io.StringIO()
    call_command("sync", "p", stdout=said)
    assert "the study is active (taking participants):" in said.getvalue() and "study ACTIVE" not in said.getvalue()
    page = admin_client.get(f"/dashboard/campaign/{campaign.pk}/").content.decode()
    assert participant in page and "awaiting review" in page and "Sync with Prolific" in page
    # Prolific's reasons in words, none chosen in advance.
    assert '<option value="" selected disabled>Choose Prolific\'s reason</option>' in page
    assert '<option value="LOW_EFFORT">Low effort</option>' in page and ">too_quickly<" not in page
    action = f"/dashboard/campaign/{campaign.pk}/action/"
    response = admin_client.post(
        action,
        {
            "action": "decide",
            "participant": participant,
            "decision": "reject",
            "feedback": "Too short.",
            "category": "LOW_EFFORT",
        },
        follow=True,
    )
    assert "at least 100 characters" in response.content.decode()
    (submission,) = prolific_service.submissions.values()
    assert submission["status"] == "AWAITING REVIEW", "nothing was sent"
    response = admin_client.post(
        action,
        {
            "action": "decide",
            "participant": participant,
            "decision": "reject",
            "feedback": LONG_FEEDBACK,
            "category": "LOW_EFFORT",
        },
        follow=True,
    )
    assert f"{participant}: rejected on Prolific" in response.content.decode()
    assert submission["status"] == "REJECTED" and submission["category"] == "LOW_EFFORT"
    assert not Answer.objects.filter(worker__external_id=participant, counts=True).exists()
    listing = admin_client.get("/admin/annotator/prolificsession/").content.decode()
    assert participant in listing and "REJECTED" in listing  # the admin shows the mirror, read only


def test_without_a_token_the_crowd_names_the_missing_setting(world_dir, settings) -> None:
    """The client is built from settings, inside the adapter only; a missing token is Django's
    ImproperlyConfigured naming the variable, and the command says so instead of failing."""
    from django.core.exceptions import ImproperlyConfigured

    from annotator.crowds.prolific.common import prolific_client

    settings.PROLIFIC_TOKEN = ""
    with pytest.raises(ImproperlyConfigured, match="PROLIFIC_TOKEN is not set"):
        prolific_client()
    concept_network(world_dir, concepts=("car",))
    call_command("create_campaign", "p", "--network", "world", "--layers", "conv3")
    with pytest.raises(CommandError, match="PROLIFIC_TOKEN is not set"):
        call_command("publish", "p", "--backend", "prolific", "--external-url", "https://localhost", "--dry-run")
    assert Campaign.objects.get(name="p").platform == ""


def test_a_session_prolific_does_not_list_as_this_participants_and_active_opens_nothing(
    campaign, prolific_service, settings
) -> None:
    study = campaign.crowd_state["study_id"]
    owner = secrets.token_hex(12)
    prolific_service._start(study, owner)
    session_id = next(iter(prolific_service.submissions))
    other = Client().get(
        f"/prolific/{campaign.pk}/",
        {"PROLIFIC_PID": secrets.token_hex(12), "STUDY_ID": study, "SESSION_ID": session_id},
    )
    assert other.status_code == 400 and "belongs to another participant" in other.content.decode()
    prolific_service.set_status(owner, "RETURNED")
    back = Client().get(
        f"/prolific/{campaign.pk}/", {"PROLIFIC_PID": owner, "STUDY_ID": study, "SESSION_ID": session_id}
    )
    assert back.status_code == 400 and "lists this session as returned" in back.content.decode()
    settings.PROLIFIC_API_URL = "http://127.0.0.1:9/"  # Prolific cannot be reached: nobody is let in
    down = Client().get(
        f"/prolific/{campaign.pk}/", {"PROLIFIC_PID": owner, "STUDY_ID": study, "SESSION_ID": session_id}
    )
    assert down.status_code == 503 and "try again in a minute" in down.content.decode()
    assert not ProlificSession.objects.exists() and not Worker.objects.filter(kind="prolific").exists()


def test_no_work_no_code_and_a_submission_without_answers_is_never_approved(campaign, prolific_service, capsys) -> None:
    import uuid

    from django.utils import timezone

    for hit in campaign.hits.all():  # other participants hold every place of every HIT
        for slot in range(hit.answers_wanted):
            holder = Worker.objects.create(kind="prolific", external_id=secrets.token_hex(12))
            Assignment.objects.create(
                hit=hit, worker=holder, slot=slot, external_id=uuid.uuid4().hex, opened_at=timezone.now()
            )
    client = Client()
    page = client.get(take(client, prolific_service, campaign, (newcomer := secrets.token_hex(12))))
    body = page.content.decode()
    code = campaign.crowd_state["completion_code"]
    assert page.status_code == 200 and "No HIT is left for you" in body and code not in body
    assert ProlificSession.objects.get(worker__external_id=newcomer).finished_at is None
    prolific_service._complete(newcomer, code)  # the code found elsewhere: Prolific takes it
    call_command("sync", "p")
    call_command("review", "p", "--approve-passing")
    captured = capsys.readouterr()
    assert "no confirmed answer here, so never approved" in captured.err and "0 approved, 1 refused" in captured.out
    assert {s["status"] for s in prolific_service.submissions.values()} == {"AWAITING REVIEW"}
    with pytest.raises(CommandError, match="never approved"):
        call_command("review", "p", "--approve", newcomer)
