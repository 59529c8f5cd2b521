"""The simulated crowd: workers from `pipeline.crowd` answer a campaign of the pool (local annotators)
through the real pages over HTTP (a server on loopback, lab links, cookies, CSRF, the HIT form, gold
warnings), then the aggregation is scored against the demo world's truth. What a worker posts and how
the results are scored is the campaign's task's (`Task.simulation`)."""

from __future__ import annotations

import http.cookiejar
import re
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import numpy as np
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

from annotator.crowds import crowd_for
from annotator.errors import ActionRefused
from annotator.models import Assignment, Campaign
from annotator.services.workers import lab_link_create
from annotator.task_kinds import Simulation, task_for
from pipeline import crowd


class CrowdError(ActionRefused):
    pass


@dataclass(frozen=True)
class CrowdSettings:
    workers: int = 10
    spammers: float = 0.2
    noise: float = 0.1
    seed: int = 0


@dataclass
class CrowdReport:
    answers: int = 0
    workers: int = 0
    units: int = 0
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # the scores in words (the task's)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _Browser:
    """One simulated worker's browser: cookies, CSRF tokens, redirects."""

    def __init__(self, base: str, start: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        _, page, _ = self.open(start)  # the lab link's page: signing in is its form's POST
        self.open(start, [("csrfmiddlewaretoken", _csrf(page))])

    def open(self, path: str, data: list[tuple[str, str]] | None = None) -> tuple[str, str, int]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        url = self.base + path if path.startswith("/") else path
        if not url.startswith(self.base):
            raise CrowdError(f"The simulated browser only visits {self.base}, not {url}.")
        request = urllib.request.Request(url, data=body)  # noqa: S310 - checked above: our loopback server
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.geturl(), response.read().decode(), response.status
        except urllib.error.HTTPError as error:
            return error.geturl(), error.read().decode(), error.code


def _csrf(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if found is None:
        raise CrowdError(f"The simulated browser found no form to post on this page: {page[:200]}")
    return found.group(1)


def _answer_one(browser: _Browser, worker: crowd.SimulatedWorker, simulation: Simulation) -> bool:
    """Take the next HIT and answer it; False when none is left."""
    url, page, _ = browser.open("/annotate/")
    current = re.search(r'action="(/annotate/a/[^"]+)"', page)
    if current:
        url, page, _ = browser.open(current.group(1))
    elif 'action="/annotate/next/"' in page:
        url, page, _ = browser.open("/annotate/next/", [("csrfmiddlewaretoken", _csrf(page))])
    if "/annotate/a/" not in url:
        return False
    external_id = url.rstrip("/").rsplit("/", 1)[1]
    hit_id = Assignment.objects.values_list("hit_id", flat=True).get(external_id=external_id)
    for attempt in range(3):
        data = [("csrfmiddlewaretoken", _csrf(page)), *simulation.fields(worker, hit_id, attempt)]
        after, page, status = browser.open(url, data)
        if status != 200:
            raise CrowdError(f"{worker.name}'s answer was refused ({status}): {page[:300]}")
        if after != url or 'id="gold-warning"' not in page:
            return True
    raise CrowdError(f"{worker.name}'s third try was not stored.")


def crowd_simulate(*, campaign: Campaign, settings: CrowdSettings) -> CrowdReport:
    if not crowd_for(campaign).pool or campaign.status != Campaign.Status.PUBLISHED:
        raise CrowdError(f"Publish {campaign.name!r} locally first: manage.py publish {campaign.name} --backend local")
    if settings.workers < campaign.answers_per_unit:
        raise CrowdError(f"--workers must be at least the answers per unit ({campaign.answers_per_unit}).")
    simulation = task_for(campaign).simulation(campaign)
    rng = np.random.default_rng(settings.seed)
    spammers = round(settings.workers * settings.spammers)
    server = ThreadedWSGIServer(("127.0.0.1", 0), _Quiet)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    report = CrowdReport(workers=settings.workers, units=campaign.hits.count())
    try:
        team = []
        for i in range(settings.workers):
            name = f"sim-{campaign.name}-{settings.seed}-{i:02d}"
            worker_rng = np.random.default_rng(rng.integers(2**32))
            worker = crowd.SimulatedWorker(name, i < spammers, settings.noise, worker_rng)
            team.append((worker, _Browser(base, lab_link_create(label=name)[1])))
        active = list(team)
        while active:
            for member in list(active):
                if _answer_one(member[1], member[0], simulation):
                    report.answers += 1
                else:
                    active.remove(member)
    finally:
        server.shutdown()
        server.server_close()
    report.scores = simulation.scores(campaign)
    report.lines = simulation.summary(report.scores)
    return report
