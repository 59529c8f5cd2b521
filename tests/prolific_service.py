"""A local stand-in for Prolific, spoken to over HTTP by the product's real client: the researcher API
(studies, submissions, bonuses, participant groups, the cost calculator) and the participant's side
(a study link that opens the external study URL with the three ids, and the completion page).

It checks what Prolific checks: the `Authorization: Token` header, every request body against the
shapes in Prolific's API reference (unknown or missing fields are refused), a rejection's message of
at least 100 characters and its category, places that only grow after publishing, decisions that
cannot be undone, and no concurrent requests (a second request while one is in flight gets a 429).
Lists are paginated (`_links.next.href`) and throttling (429 with Retry-After) comes on demand."""

from __future__ import annotations

import json
import secrets
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CODE_TYPES = {
    "COMPLETED",
    "FAILED_ATTENTION_CHECK",
    "FOLLOW_UP_STUDY",
    "GIVE_BONUS",
    "INCOMPATIBLE_DEVICE",
    "NO_CONSENT",
    "OTHER",
    "FIXED_SCREENOUT",
}
CODE_ACTIONS = {
    "AUTOMATICALLY_APPROVE",
    "MANUALLY_REVIEW",
    "ADD_TO_PARTICIPANT_GROUP",
    "REMOVE_FROM_PARTICIPANT_GROUP",
    "REQUEST_RETURN",
    "DYNAMIC_PAYMENT",
}
REJECTION_CATEGORIES = {
    "TOO_QUICKLY",
    "TOO_SLOWLY",
    "FAILED_INSTRUCTIONS",
    "INCOMP_LONGITUDINAL",
    "FAILED_CHECK",
    "LOW_EFFORT",
    "MALINGERING",
    "NO_CODE",
    "BAD_CODE",
    "NO_DATA",
    "UNSUPP_DEVICE",
    "OTHER",
}
STUDY_FIELDS = {
    "name": str,
    "internal_name": str,
    "description": str,
    "external_study_url": str,
    "prolific_id_option": str,
    "completion_codes": list,
    "total_available_places": int,
    "estimated_completion_time": int,
    "reward": int,
    "device_compatibility": list,
    "filters": list,
}
REQUIRED = {
    "name",
    "description",
    "external_study_url",
    "prolific_id_option",
    "completion_codes",
    "total_available_places",
    "estimated_completion_time",
    "reward",
}
FEE = Decimal("0.333")


class Refused(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _oid() -> str:
    return secrets.token_hex(12)


class LocalProlific:
    def __init__(self, token: str = "test-token", page_size: int = 2) -> None:
        self.token = token
        self.page_size = page_size  # small, so that the product must follow the next links
        self.studies: dict[str, dict] = {}
        self.submissions: dict[str, dict] = {}
        self.bulk: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.calls: list[str] = []
        self.refusals: list[str] = []
        self.throttled = 0
        self.in_flight = 0
        self.hold = 0.005  # seconds each request is held, long enough for an overlapping one to be caught
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()

    def throttle(self, times: int) -> None:
        self.throttled = times

    # The participant's side ----------------------------------------------------------------------
    def study_link(self, study_id: str, participant_id: str) -> str:
        """Where Prolific sends a participant who takes the study: this service's own page, which starts
        their submission and forwards them to the external study URL with the ids filled in."""
        return f"{self.url}/participant/start?study={study_id}&pid={participant_id}"

    def _start(self, study_id: str, participant_id: str) -> str:
        study = self.studies[study_id]
        if study["status"] != "ACTIVE":
            raise Refused("This study is not active.")
        existing = [
            s for s in self.submissions.values() if s["study_id"] == study_id and s["participant_id"] == participant_id
        ]
        submission = existing[0] if existing else None
        if submission is None:
            taken = sum(
                1
                for s in self.submissions.values()
                if s["study_id"] == study_id and s["status"] not in ("RETURNED", "TIMED-OUT")
            )
            if taken >= study["total_available_places"]:
                raise Refused("This study is full.")
            submission = {
                "id": _oid(),
                "study_id": study_id,
                "participant_id": participant_id,
                "status": "ACTIVE",
                "started_at": time.time(),
                "study_code": "",
            }
            self.submissions[submission["id"]] = submission
        return (
            study["external_study_url"]
            .replace("{{%PROLIFIC_PID%}}", participant_id)
            .replace("{{%STUDY_ID%}}", study_id)
            .replace("{{%SESSION_ID%}}", submission["id"])
        )

    def _complete(self, participant_id: str, code: str) -> str:
        active = [
            s for s in self.submissions.values() if s["participant_id"] == participant_id and s["status"] == "ACTIVE"
        ]
        if not active:
            raise Refused("You have no study in progress.")
        submission = active[-1]
        codes = {c["code"] for c in self.studies[submission["study_id"]]["completion_codes"]}
        if code not in codes:
            raise Refused(f"The completion code {code!r} is not this study's.")
        submission.update(status="AWAITING REVIEW", study_code=code)
        return "<h1 id='prolific-complete'>Study complete: your submission awaits review</h1>"

    def set_status(self, participant_id: str, status: str) -> None:
        """A participant returns the study, or times out."""
        for submission in self.submissions.values():
            if submission["participant_id"] == participant_id:
                submission["status"] = status

    # The researcher API ---------------------------------------------------------------------------
    def _page(self, items: list[dict], path: str, query: dict) -> dict:
        page = int(query.get("page", ["1"])[0])
        start = (page - 1) * self.page_size
        chunk = items[start : start + self.page_size]
        more = start + self.page_size < len(items)
        joiner = "&" if "?" in path else "?"
        base = path if "page=" not in path else path.split("page=")[0].rstrip("&?")
        return {
            "results": chunk,
            "meta": {"count": len(items)},
            "_links": {"next": {"href": f"{self.url}{base}{joiner}page={page + 1}" if more else None}},
        }

    def _check_study(self, body: dict, partial: bool) -> None:
        unknown = set(body) - set(STUDY_FIELDS)
        if unknown:
            raise Refused(f"Unknown fields: {', '.join(sorted(unknown))}.")
        missing = set() if partial else REQUIRED - set(body)
        if missing:
            raise Refused(f"Missing required fields: {', '.join(sorted(missing))}.")
        for name, value in body.items():
            if not isinstance(value, STUDY_FIELDS[name]) or isinstance(value, bool):
                raise Refused(f"{name} must be a {STUDY_FIELDS[name].__name__}.")
        if body.get("prolific_id_option", "url_parameters") not in {"question", "url_parameters", "not_required"}:
            raise Refused("prolific_id_option must be question, url_parameters or not_required.")
        url = body.get("external_study_url")
        if url is not None and not url.startswith(("http://", "https://")):
            raise Refused("external_study_url must be a URL.")
        for code in body.get("completion_codes", []):
            if (
                not isinstance(code.get("code"), str)
                or code.get("code_type") not in CODE_TYPES
                or not all(a.get("action") in CODE_ACTIONS for a in code.get("actions", []))
            ):
                raise Refused("Each completion code needs a code, a code_type and known actions.")
        for key in ("total_available_places", "estimated_completion_time", "reward"):
            if key in body and body[key] < 1:
                raise Refused(f"{key} must be at least 1.")
        for rule in body.get("filters", []):
            if not isinstance(rule.get("filter_id"), str) or not ({"selected_range", "selected_values"} & set(rule)):
                raise Refused("Each filter needs a filter_id and selected_range or selected_values.")
        if not set(body.get("device_compatibility", [])) <= {"desktop", "tablet", "mobile"}:
            raise Refused("device_compatibility takes desktop, tablet and mobile.")

    def _api(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        parts = [p for p in path.split("/") if p][2:]  # after api/v1
        if parts == ["studies"] and method == "GET":
            return 200, self._page(list(self.studies.values()), "/api/v1/studies/", query)
        if parts == ["studies"] and method == "POST":
            self._check_study(body, partial=False)
            study = {
                "id": _oid(),
                "status": "UNPUBLISHED",
                "device_compatibility": ["desktop", "tablet", "mobile"],
                "filters": [],
                "internal_name": "",
                **body,
            }
            self.studies[study["id"]] = study
            return 201, study
        if parts == ["study-cost-calculator"] and method == "POST":
            if set(body) != {"reward", "total_available_places"}:
                raise Refused("The calculator takes reward and total_available_places.")
            total = Decimal(body["reward"]) * body["total_available_places"] * (1 + FEE)
            return 200, {"total_cost": float(total.quantize(Decimal(1)))}
        if len(parts) >= 2 and parts[0] == "studies":
            study = self.studies.get(parts[1])
            if study is None:
                raise Refused("No such study.", 404)
            if len(parts) == 2 and method == "GET":
                return 200, study
            if len(parts) == 2 and method == "PATCH":
                self._check_study(body, partial=True)
                places = body.get("total_available_places")
                if study["status"] != "UNPUBLISHED":
                    if set(body) - {"total_available_places"}:
                        raise Refused("Only the places of a published study can change.")
                    if places is not None and places < study["total_available_places"]:
                        raise Refused("Places can only be increased after publishing.")
                study.update(body)
                return 200, study
            if parts[2:] == ["transition"] and method == "POST":
                if body != {"action": "PUBLISH"} or study["status"] != "UNPUBLISHED":
                    raise Refused(f"Cannot {body.get('action')} a study that is {study['status']}.")
                study["status"] = "ACTIVE"
                return 200, study
            if parts[2:] == ["submissions"] and method == "GET":
                rows = [s for s in self.submissions.values() if s["study_id"] == study["id"]]
                return 200, self._page(rows, f"/api/v1/studies/{study['id']}/submissions/", query)
        if len(parts) == 2 and parts[0] == "submissions" and method == "GET":
            found = self.submissions.get(parts[1])
            if found is None:
                return 404, {"error": {"detail": "Not found."}}
            return 200, {
                **{k: v for k, v in found.items() if k != "participant_id"},
                "participant": found["participant_id"],
            }
        if len(parts) == 3 and parts[0] == "submissions" and parts[2] == "transition" and method == "POST":
            return 200, self._decide(parts[1], body)
        if parts == ["submissions", "bonus-payments"] and method == "POST":
            return 201, self._set_up_bonus(body)
        if len(parts) == 3 and parts[0] == "bulk-bonus-payments" and parts[2] == "pay" and method == "POST":
            bulk = self.bulk.get(parts[1])
            if bulk is None or bulk["paid"]:
                raise Refused("No such unpaid bonus payment.")
            bulk["paid"] = True
            return 202, {}
        if parts == ["participant-groups"]:
            if method == "GET":
                workspace = query.get("workspace_id", [""])[0]
                rows = [g for g in self.groups.values() if g["workspace_id"] == workspace]
                return 200, self._page(rows, f"/api/v1/participant-groups/?workspace_id={workspace}", query)
            if set(body) != {"workspace_id", "name"}:
                raise Refused("A participant group takes workspace_id and name.")
            group = {"id": _oid(), "participants": [], **body}
            self.groups[group["id"]] = group
            return 201, group
        if len(parts) == 3 and parts[0] == "participant-groups" and parts[2] == "participants":
            group = self.groups.get(parts[1])
            if group is None or set(body) != {"participant_ids"}:
                raise Refused("No such group, or no participant_ids.")
            ids = body["participant_ids"]
            group["participants"] = (
                [*group["participants"], *ids]
                if method == "POST"
                else [p for p in group["participants"] if p not in ids]
            )
            return 200, group
        raise Refused(f"No such endpoint: {method} {path}", 404)

    def _decide(self, submission_id: str, body: dict) -> dict:
        submission = self.submissions.get(submission_id)
        if submission is None:
            raise Refused("No such submission.", 404)
        if submission["status"] != "AWAITING REVIEW":
            raise Refused(f"A submission that is {submission['status']} cannot be approved or rejected.")
        if body.get("action") == "APPROVE" and set(body) == {"action"}:
            submission["status"] = "APPROVED"
        elif body.get("action") == "REJECT" and set(body) == {"action", "message", "rejection_category"}:
            if len(body["message"]) < 100:
                raise Refused("The rejection message must be at least 100 characters.")
            if body["rejection_category"] not in REJECTION_CATEGORIES:
                raise Refused("Unknown rejection category.")
            submission.update(status="REJECTED", message=body["message"], category=body["rejection_category"])
        else:
            raise Refused("A transition is APPROVE, or REJECT with message and rejection_category.")
        return submission

    def _set_up_bonus(self, body: dict) -> dict:
        if set(body) != {"study_id", "csv_bonuses"} or body["study_id"] not in self.studies:
            raise Refused("Bonuses take study_id and csv_bonuses.")
        taken = {s["participant_id"] for s in self.submissions.values() if s["study_id"] == body["study_id"]}
        amounts = {}
        for line in body["csv_bonuses"].strip().splitlines():
            participant, _, amount = line.partition(",")
            if participant not in taken:
                raise Refused(f"{participant} did not take part in this study.")
            if Decimal(amount) <= 0:
                raise Refused(f"Bonus amounts must be positive ({amount}).")
            amounts[participant] = Decimal(amount)
        bulk = {"id": _oid(), "study": body["study_id"], "amounts": amounts, "paid": False}
        self.bulk[bulk["id"]] = bulk
        total = sum(amounts.values())
        return {
            "id": bulk["id"],
            "study": body["study_id"],
            "amount": float(total * 100),
            "fees": float(total * FEE * 100),
            "total_amount": float(total * (1 + FEE) * 100),
        }

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(
                self, status: int, payload, content_type: str = "application/json", headers: dict | None = None
            ) -> None:
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _participant(self, parts) -> None:
                query = parse_qs(parts.query)
                try:
                    if parts.path == "/participant/start":
                        pid = query["pid"][0]
                        target = service._start(query["study"][0], pid)
                        self.send_response(302)
                        self.send_header("Location", target)
                        self.send_header("Set-Cookie", f"pid={pid}; Path=/")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    cookie = dict(
                        c.strip().split("=", 1) for c in (self.headers.get("Cookie") or "").split(";") if "=" in c
                    )
                    self._send(200, service._complete(cookie.get("pid", ""), query.get("cc", [""])[0]), "text/html")
                except (Refused, KeyError) as error:
                    self._send(400, f"<h1>{error}</h1>", "text/html")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                if parts.path in ("/participant/start", "/submissions/complete"):
                    return self._participant(parts)
                with service.lock:
                    service.in_flight += 1
                    concurrent = service.in_flight > 1
                    throttled = service.throttled > 0
                    service.throttled -= throttled
                try:
                    if concurrent:
                        service.refusals.append("concurrent")
                        return self._send(429, {"error": {"detail": "Concurrent requests are not supported."}})
                    time.sleep(service.hold)
                    if self.headers.get("Authorization") != f"Token {service.token}":
                        return self._send(401, {"error": {"detail": "Invalid token."}})
                    if throttled:
                        return self._send(
                            429, {"error": {"detail": "Request was throttled."}}, headers={"Retry-After": "0"}
                        )
                    length = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                    service.calls.append(f"{method} {parts.path}")
                    status, payload = service._api(method, parts.path, parse_qs(parts.query), body)
                    self._send(status, payload)
                except Refused as error:
                    service.refusals.append(str(error))
                    self._send(error.status, {"error": {"detail": str(error)}})
                except (ValueError, KeyError, TypeError) as error:
                    service.refusals.append(f"malformed: {error}")
                    self._send(400, {"error": {"detail": f"Malformed request: {error}"}})
                finally:
                    with service.lock:
                        service.in_flight -= 1

            def do_GET(self) -> None:  # noqa: N802 - http.server's names
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def do_PATCH(self) -> None:  # noqa: N802
                self._serve("PATCH")

            def do_DELETE(self) -> None:  # noqa: N802
                self._serve("DELETE")

        return Handler
