"""The mturk package on its own: question and answer XML, fees, and each client call checked by
botocore's Stubber against MTurk's real service model (parameters and response shapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from mturk import client as mturk
from mturk.fees import assignment_cost, bonus_cost, commission_rate
from mturk.question import AnswerXMLError, answers_xml, external_question, parse_answers


@pytest.fixture
def stub():
    client = boto3.client("mturk", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_external_question_escapes_and_bounds() -> None:
    xml = external_question("https://a.example.org/hit/1/?x=1&y=2", 900)
    assert "<ExternalURL>https://a.example.org/hit/1/?x=1&amp;y=2</ExternalURL>" in xml
    assert "<FrameHeight>900</FrameHeight>" in xml and "ExternalQuestion.xsd" in xml
    with pytest.raises(ValueError, match="frame height"):
        external_question("https://a.example.org/", 9000)


def test_answers_round_trip_and_bad_xml_is_named() -> None:
    fields = {"description": "red <car> & more", "category": "object", "mismatch": "3,17"}
    assert parse_answers(answers_xml(fields)) == fields
    for xml, message in (
        ("", "empty"),
        ("<QuestionFormAnswers><Answer>", "not well-formed"),
        ("<Other/>", "root element is 'Other'"),
        ("<QuestionFormAnswers><Answer><FreeText>x</FreeText></Answer></QuestionFormAnswers>", "no QuestionIdentifier"),
        (
            answers_xml({"a": "1"}).replace(
                "</QuestionFormAnswers>",
                "<Answer><QuestionIdentifier>a</QuestionIdentifier></Answer></QuestionFormAnswers>",
            ),
            "appears twice",
        ),
        (
            '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><QuestionFormAnswers>&e;</QuestionFormAnswers>',
            "not well-formed",
        ),
    ):
        with pytest.raises(AnswerXMLError, match=message):
            parse_answers(xml)


def test_fees_follow_mturks_commission() -> None:
    assert commission_rate(9) == Decimal("0.20") and commission_rate(10) == Decimal("0.40")
    assert assignment_cost(Decimal("0.10"), 3) == Decimal("0.12")
    assert assignment_cost(Decimal("0.10"), 10) == Decimal("0.14")
    assert assignment_cost(Decimal("0.01"), 3) == Decimal("0.02")  # at least one cent of commission
    assert bonus_cost(Decimal("1.00")) == Decimal("1.20")


def test_hit_type_with_the_default_qualifications(stub) -> None:
    client, stubber = stub
    requirements = mturk.qualification_requirements(locales=["US", "gb-sct"], custom_type="3QUAL", custom_min=80)
    assert [r["QualificationTypeId"] for r in requirements] == [
        "000000000000000000L0",
        "00000000000000000040",
        "00000000000000000071",
        "3QUAL",
    ]
    assert requirements[2]["LocaleValues"] == [{"Country": "US"}, {"Country": "GB", "Subdivision": "SCT"}]
    stubber.add_response(
        "create_hit_type",
        {"HITTypeId": "3TYPE"},
        {
            "Title": "t",
            "Description": "d",
            "Keywords": "k",
            "Reward": "0.10",
            "AssignmentDurationInSeconds": 1800,
            "AutoApprovalDelayInSeconds": 259200,
            "QualificationRequirements": requirements,
        },
    )
    assert (
        mturk.create_hit_type(
            client,
            title="t",
            description="d",
            keywords="k",
            reward=Decimal("0.1"),
            assignment_seconds=1800,
            auto_approval_seconds=259200,
            qualifications=requirements,
        )
        == "3TYPE"
    )


def test_create_hit_returns_the_hit_a_repeated_token_names(stub) -> None:
    client, stubber = stub
    params = {
        "HITTypeId": "3TYPE",
        "Question": "<q/>",
        "MaxAssignments": 3,
        "LifetimeInSeconds": 3600,
        "RequesterAnnotation": "unit 1",
        "UniqueRequestToken": "ua-1-1",
    }
    stubber.add_response("create_hit_with_hit_type", {"HIT": {"HITId": "3" * 30}}, params)
    stubber.add_client_error(
        "create_hit_with_hit_type",
        service_error_code="RequestError",
        http_status_code=400,
        service_message=f"The HIT with ID {'3' * 29 + 'A'} already exists",
        expected_params=params,
    )
    call = {
        "hit_type_id": "3TYPE",
        "question": "<q/>",
        "max_assignments": 3,
        "lifetime_seconds": 3600,
        "annotation": "unit 1",
        "token": "ua-1-1",
    }
    assert mturk.create_hit(client, **call) == ("3" * 30, True)
    assert mturk.create_hit(client, **call) == ("3" * 29 + "A", False)


def test_lists_follow_next_token_to_the_end(stub) -> None:
    client, stubber = stub
    first = {
        "Assignments": [{"AssignmentId": "A1", "WorkerId": "W1", "HITId": "H", "AssignmentStatus": "Submitted"}],
        "NextToken": "p2",
        "NumResults": 1,
    }
    second = {
        "Assignments": [{"AssignmentId": "A2", "WorkerId": "W2", "HITId": "H", "AssignmentStatus": "Approved"}],
        "NumResults": 1,
    }
    base = {"HITId": "H", "MaxResults": 100, "AssignmentStatuses": ["Submitted", "Approved", "Rejected"]}
    stubber.add_response("list_assignments_for_hit", first, base)
    stubber.add_response("list_assignments_for_hit", second, {**base, "NextToken": "p2"})
    assert [a["AssignmentId"] for a in mturk.list_assignments(client, "H")] == ["A1", "A2"]


def test_service_errors_become_clear_messages(stub) -> None:
    client, stubber = stub
    stubber.add_client_error(
        "get_account_balance",
        service_error_code="ServiceFault",
        http_status_code=500,
        service_message="We are experiencing technical difficulties.",
    )
    with pytest.raises(mturk.MTurkError, match="refused GetAccountBalance: We are experiencing technical"):
        mturk.account_balance(client)
    stubber.add_client_error(
        "get_hit",
        service_error_code="RequestError",
        http_status_code=400,
        service_message="Hit 3X does not exist. (1700000000)",
    )
    assert mturk.get_hit(client, "3X") is None


def test_money_and_worker_calls_send_what_mturk_expects(stub) -> None:
    client, stubber = stub
    stubber.add_response("get_account_balance", {"AvailableBalance": "10000.00"}, {})
    stubber.add_response(
        "approve_assignment", {}, {"AssignmentId": "A1", "OverrideRejection": True, "RequesterFeedback": "Thanks"}
    )
    stubber.add_response(
        "send_bonus",
        {},
        {
            "WorkerId": "W1",
            "AssignmentId": "A1",
            "BonusAmount": "0.50",
            "Reason": "careful work",
            "UniqueRequestToken": "bonus-1-1",
        },
    )
    stubber.add_response("create_worker_block", {}, {"WorkerId": "W1", "Reason": "spam"})
    stubber.add_response("delete_worker_block", {}, {"WorkerId": "W1"})
    when = datetime(2030, 1, 1, tzinfo=UTC)
    stubber.add_response("update_expiration_for_hit", {}, {"HITId": "H", "ExpireAt": when})
    stubber.add_response("delete_hit", {}, {"HITId": "H"})
    stubber.add_response(
        "create_additional_assignments_for_hit",
        {},
        {"HITId": "H", "NumberOfAdditionalAssignments": 2, "UniqueRequestToken": "more"},
    )
    stubber.add_response(
        "create_qualification_type",
        {"QualificationType": {"QualificationTypeId": "3Q"}},
        {
            "Name": "n",
            "Description": "d",
            "QualificationTypeStatus": "Active",
            "Test": "<t/>",
            "AnswerKey": "<k/>",
            "TestDurationInSeconds": 1200,
            "RetryDelayInSeconds": 86400,
        },
    )
    assert mturk.account_balance(client) == Decimal("10000.00")
    mturk.approve_assignment(client, "A1", "Thanks", override_rejection=True)
    mturk.send_bonus(
        client, worker_id="W1", assignment_id="A1", amount=Decimal("0.5"), reason="careful work", token="bonus-1-1"
    )
    mturk.block_worker(client, "W1", "spam")
    mturk.unblock_worker(client, "W1")
    mturk.update_expiration(client, "H", when)
    mturk.delete_hit(client, "H")
    mturk.create_additional_assignments(client, "H", 2, "more")
    assert (
        mturk.create_qualification_test(client, name="n", description="d", test_xml="<t/>", answer_key_xml="<k/>")
        == "3Q"
    )


def test_the_crowd_builds_its_client_from_settings(monkeypatch, settings) -> None:
    from annotator.crowds import CrowdError
    from annotator.crowds.mturk.common import mturk_client

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    settings.MTURK_ENDPOINT_URL = ""
    assert mturk_client("sandbox").meta.endpoint_url == "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
    settings.MTURK_ENDPOINT_URL = "http://127.0.0.1:9"
    assert mturk_client("production").meta.endpoint_url == "http://127.0.0.1:9"
    with pytest.raises(CrowdError, match="Unknown Mechanical Turk environment"):
        mturk_client("local")


def test_a_repeated_token_without_a_hit_id_is_found_by_its_annotation(stub) -> None:
    client, stubber = stub
    stubber.add_client_error(
        "create_hit_with_hit_type",
        service_error_code="RequestError",
        http_status_code=400,
        service_message="AWS.MechanicalTurk.HitAlreadyExists",
    )
    stubber.add_response(
        "list_hits",
        {"HITs": [{"HITId": "3OTHER", "RequesterAnnotation": "unit 2"}], "NextToken": "p2"},
        {"MaxResults": 100},
    )
    stubber.add_response(
        "list_hits",
        {"HITs": [{"HITId": "3MINE", "RequesterAnnotation": "unit 1"}]},
        {"MaxResults": 100, "NextToken": "p2"},
    )
    assert mturk.create_hit(
        client,
        hit_type_id="3TYPE",
        question="<q/>",
        max_assignments=3,
        lifetime_seconds=60,
        annotation="unit 1",
        token="ua-1-1",
    ) == ("3MINE", False)
