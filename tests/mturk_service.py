"""A local stand-in for Mechanical Turk, spoken to over HTTP by a real boto3 client (request signing,
JSON protocol, retries included): the requester API the product calls, and a worker site that
frames a HIT's ExternalQuestion page and receives its externalSubmit post.

It keeps what MTurk keeps (HIT types, HITs, assignments, answers as QuestionFormAnswers, bonuses,
blocks) and behaves as MTurk does where the product depends on it: UniqueRequestToken refusals that
name the HIT, paginated lists, ThrottlingException on demand, and auto-approval after the delay."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from mturk.question import answers_xml

TARGET = "MTurkRequesterServiceV20170117."


class RequestError(Exception):
    def __init__(self, message: str, turk_code: str = "AWS.MechanicalTurk.RequestError") -> None:
        super().__init__(message)
        self.turk_code = turk_code


def _id() -> str:
    return uuid.uuid4().hex[:30].upper()


class LocalTurk:
    def __init__(self, balance: str = "10000.00", page_size: int = 2) -> None:
        self.balance = Decimal(balance)
        self.page_size = page_size  # small, so that the product must follow NextToken
        self.hit_types: dict[str, dict] = {}
        self.hits: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}
        self.assignments: dict[str, dict] = {}
        self.bonuses: list[dict] = []
        self.blocks: dict[str, str] = {}
        self.calls: list[str] = []
        self.throttle = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()

    # The worker's side ----------------------------------------------------------------------------
    def accept(self, hit_id: str, worker_id: str) -> str:
        """A worker accepts a HIT: a new assignment, and the worker-site URL that frames the task."""
        with self.lock:
            hit = self.hits[hit_id]
            taken = [a for a in self.assignments.values() if a["HITId"] == hit_id]
            if len(taken) >= hit["MaxAssignments"] or hit["HITStatus"] != "Assignable":
                raise RequestError("This HIT is no longer available.")
            assignment_id = _id()
            now = datetime.now(UTC)
            self.assignments[assignment_id] = {
                "AssignmentId": assignment_id,
                "WorkerId": worker_id,
                "HITId": hit_id,
                "AssignmentStatus": "Accepted",
                "AcceptTime": now,
                "Deadline": now + timedelta(seconds=self.hit_types[hit["HITTypeId"]]["AssignmentDurationInSeconds"]),
            }
        return f"{self.url}/worker/task?assignment={assignment_id}"

    def submit(self, assignment_id: str, fields: dict[str, str], when: datetime | None = None) -> None:
        with self.lock:
            assignment = self.assignments[assignment_id]
            hit = self.hits[assignment["HITId"]]
            delay = self.hit_types[hit["HITTypeId"]]["AutoApprovalDelayInSeconds"]
            now = when or datetime.now(UTC)
            assignment.update(
                AssignmentStatus="Submitted",
                SubmitTime=now,
                Answer=answers_xml(fields),
                AutoApprovalTime=now + timedelta(seconds=delay),
            )

    def auto_approve(self, now: datetime | None = None) -> int:
        """What MTurk does by itself once an assignment's auto-approval time has passed."""
        now = now or datetime.now(UTC)
        count = 0
        with self.lock:
            for a in self.assignments.values():
                if a["AssignmentStatus"] == "Submitted" and a["AutoApprovalTime"] <= now:
                    a.update(AssignmentStatus="Approved", ApprovalTime=now)
                    count += 1
        return count

    def external_url(self, hit_id: str) -> str:
        question = self.hits[hit_id]["Question"]
        return re.search(r"<ExternalURL>(.*?)</ExternalURL>", question).group(1).replace("&amp;", "&")

    # The requester API ----------------------------------------------------------------------------
    def _hit_view(self, hit: dict) -> dict:
        mine = [a for a in self.assignments.values() if a["HITId"] == hit["HITId"]]
        done = sum(a["AssignmentStatus"] in ("Submitted", "Approved", "Rejected") for a in mine)
        pending = sum(a["AssignmentStatus"] == "Accepted" for a in mine)
        status = hit["HITStatus"]
        if status == "Assignable" and (hit["Expiration"] <= datetime.now(UTC) or len(mine) >= hit["MaxAssignments"]):
            status = "Reviewable" if not pending else "Unassignable"
        return {
            **{k: v for k, v in hit.items() if k != "Token"},
            "HITStatus": status,
            "NumberOfAssignmentsPending": pending,
            "NumberOfAssignmentsCompleted": done,
            "NumberOfAssignmentsAvailable": max(0, hit["MaxAssignments"] - len(mine)),
        }

    def _page(self, items: list[dict], body: dict, key: str) -> dict:
        start = int(body.get("NextToken") or 0)
        size = min(int(body.get("MaxResults") or 100), self.page_size)
        result = {key: items[start : start + size], "NumResults": len(items[start : start + size])}
        if start + size < len(items):
            result["NextToken"] = str(start + size)
        return result

    def handle(self, operation: str, body: dict) -> dict:
        self.calls.append(operation)
        if operation == "GetAccountBalance":
            return {"AvailableBalance": f"{self.balance:.2f}"}
        if operation == "CreateHITType":
            key = json.dumps(body, sort_keys=True)
            type_id = next((t for t, v in self.hit_types.items() if v["key"] == key), None) or _id()
            self.hit_types[type_id] = {**body, "key": key}
            return {"HITTypeId": type_id}
        if operation == "CreateHITWithHITType":
            token = body.get("UniqueRequestToken")
            if token and token in self.tokens:
                raise RequestError(
                    f"The HIT with ID {self.tokens[token]} already exists for the token {token}.",
                    "AWS.MechanicalTurk.HitAlreadyExists",
                )
            kind = self.hit_types.get(body["HITTypeId"])
            if kind is None:
                raise RequestError(f"Hit type {body['HITTypeId']} does not exist.")
            question = body["Question"]
            if not re.search(r"<ExternalURL>(https://|http://(127.0.0.1|localhost)[:/])", question):
                raise RequestError("The ExternalURL must use https.")
            hit_id = _id()
            now = datetime.now(UTC)
            self.hits[hit_id] = {
                "HITId": hit_id,
                "HITTypeId": body["HITTypeId"],
                "HITGroupId": body["HITTypeId"],
                "CreationTime": now,
                "Title": kind["Title"],
                "Description": kind["Description"],
                "Question": body["Question"],
                "HITStatus": "Assignable",
                "MaxAssignments": body.get("MaxAssignments", 1),
                "Reward": kind["Reward"],
                "Expiration": now + timedelta(seconds=body["LifetimeInSeconds"]),
                "AutoApprovalDelayInSeconds": kind["AutoApprovalDelayInSeconds"],
                "AssignmentDurationInSeconds": kind["AssignmentDurationInSeconds"],
                "RequesterAnnotation": body.get("RequesterAnnotation", ""),
                "QualificationRequirements": kind.get("QualificationRequirements", []),
            }
            if token:
                self.tokens[token] = hit_id
            return {"HIT": self._hit_view(self.hits[hit_id])}
        if operation == "GetHIT":
            hit = self.hits.get(body["HITId"])
            if hit is None:
                raise RequestError(f"Hit {body['HITId']} does not exist. (1600000000000)")
            return {"HIT": self._hit_view(hit)}
        if operation == "ListHITs":
            return self._page([self._hit_view(h) for h in self.hits.values()], body, "HITs")
        if operation == "ListAssignmentsForHIT":
            statuses = set(body.get("AssignmentStatuses") or ["Submitted", "Approved", "Rejected"])
            items = [
                {k: v for k, v in a.items()}
                for a in self.assignments.values()
                if a["HITId"] == body["HITId"] and a["AssignmentStatus"] in statuses
            ]
            return self._page(items, body, "Assignments")
        if operation in ("ApproveAssignment", "RejectAssignment"):
            assignment = self.assignments.get(body["AssignmentId"])
            if assignment is None:
                raise RequestError(f"Assignment {body['AssignmentId']} does not exist.")
            allowed = {"Submitted"} | ({"Rejected"} if body.get("OverrideRejection") else set())
            if assignment["AssignmentStatus"] not in allowed:
                raise RequestError("This operation can be called with a status of: Submitted")
            now = datetime.now(UTC)
            if operation == "ApproveAssignment":
                assignment.update(AssignmentStatus="Approved", ApprovalTime=now)
            else:
                assignment.update(AssignmentStatus="Rejected", RejectionTime=now)
            if body.get("RequesterFeedback"):
                assignment["RequesterFeedback"] = body["RequesterFeedback"]
            return {}
        if operation == "SendBonus":
            if any(b.get("UniqueRequestToken") == body.get("UniqueRequestToken") for b in self.bonuses):
                raise RequestError("A bonus with this token was sent already.")
            self.bonuses.append(body)
            self.balance -= Decimal(body["BonusAmount"])
            return {}
        if operation == "CreateWorkerBlock":
            self.blocks[body["WorkerId"]] = body["Reason"]
            return {}
        if operation == "DeleteWorkerBlock":
            self.blocks.pop(body["WorkerId"], None)
            return {}
        if operation == "UpdateExpirationForHIT":
            hit = self.hits[body["HITId"]]
            hit["Expiration"] = datetime.fromtimestamp(float(body["ExpireAt"]), UTC)
            return {}
        if operation == "DeleteHIT":
            hit = self._hit_view(self.hits[body["HITId"]])
            mine = [a for a in self.assignments.values() if a["HITId"] == body["HITId"]]
            if hit["HITStatus"] not in ("Reviewable",) or any(
                a["AssignmentStatus"] in ("Submitted", "Accepted") for a in mine
            ):
                raise RequestError(
                    "This HIT is currently in the state 'Assignable'. This operation can be called "
                    "with a status of: Reviewable"
                )
            del self.hits[body["HITId"]]
            return {}
        if operation == "CreateAdditionalAssignmentsForHIT":
            self.hits[body["HITId"]]["MaxAssignments"] += body["NumberOfAdditionalAssignments"]
            return {}
        raise RequestError(f"{operation} is not implemented by the local service.")

    def _handler(self):
        turk = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if urlsplit(self.path).path == "/mturk/externalSubmit":
                    form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                    turk.submit(form.pop("assignmentId"), form)
                    return self._send(200, b"<h1 id='turk-done'>HIT submitted</h1>", "text/html")
                target = self.headers.get("X-Amz-Target", "")
                if not target.startswith(TARGET) or "AWS4-HMAC-SHA256" not in self.headers.get("Authorization", ""):
                    return self._send(
                        403,
                        b'{"__type":"UnrecognizedClientException","message":"unsigned"}',
                        "application/x-amz-json-1.1",
                    )
                with turk.lock:
                    if turk.throttle:
                        turk.throttle -= 1
                        turk.calls.append("throttled")
                        return self._send(
                            400,
                            b'{"__type":"ThrottlingException","message":"Rate exceeded"}',
                            "application/x-amz-json-1.1",
                        )
                try:
                    result = turk.handle(target[len(TARGET) :], json.loads(raw or b"{}"))
                    body, status = json.dumps(result, default=_json_default).encode(), 200
                except RequestError as error:
                    body = json.dumps(
                        {"__type": "RequestError", "Message": str(error), "TurkErrorCode": error.turk_code}
                    ).encode()
                    status = 400
                self._send(status, body, "application/x-amz-json-1.1")

            def do_GET(self) -> None:  # noqa: N802
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                assignment = turk.assignments.get(query.get("assignment", ""))
                if assignment is None:
                    return self._send(404, b"no such assignment", "text/plain")
                params = urlencode(
                    {
                        "assignmentId": assignment["AssignmentId"],
                        "hitId": assignment["HITId"],
                        "workerId": assignment["WorkerId"],
                        "turkSubmitTo": turk.url,
                    }
                )
                src = f"{turk.external_url(assignment['HITId'])}?{params}"
                page = f"<h1>worker site</h1><iframe id='task' src='{src}' width='1250' height='900'></iframe>"
                self._send(200, page.encode(), "text/html")

        return Handler


def _json_default(value):
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(type(value))
