"""The simulated crowd: workers from `pipeline.crowd` answer a local campaign through the real pages
over HTTP (a server on loopback, lab links, cookies, CSRF, the HIT form, gold warnings), then the
aggregation is scored against the demo world's truth."""

from __future__ import annotations

import http.cookiejar
import re
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from PIL import Image as PILImage

from annotator.labels import normalise
from annotator.models import Assignment, Campaign, HitImage, UnitLabel
from annotator.services import artifacts
from annotator.services.aggregation import METHODS, AggregationError, AggregationSettings, units_aggregate
from annotator.services.workers import lab_link_create
from pipeline import crowd, demo_world


class CrowdError(Exception):
    pass


@dataclass(frozen=True)
class CrowdSettings:
    workers: int = 10
    spammers: float = 0.2
    noise: float = 0.1
    seed: int = 0


@dataclass
class HitTruth:
    truth: crowd.UnitTruth
    own: list[int]  # slot positions of the unit's images, in the order of truth.matches
    gold: list[int]


@dataclass
class CrowdReport:
    answers: int = 0
    workers: int = 0
    units: int = 0
    scores: dict[str, dict[str, float]] = field(default_factory=dict)


def campaign_truth(campaign: Campaign) -> dict[int, HitTruth]:
    """Per HIT, what its unit's highlighted regions show, from the demo world's per-pixel truth."""
    slots = list(
        HitImage.objects.filter(hit__campaign=campaign)
        .select_related("top_image__image__image_set", "top_image__segmentation")
        .order_by("hit_id", "position")
    )
    if not slots:
        raise CrowdError(f"Campaign {campaign.name!r} has no HITs.")
    root = Path(slots[0].top_image.image.image_set.root)
    truth_file = root.parent / "truth.npz"
    if not truth_file.is_file():
        raise CrowdError(
            f"The simulated crowd needs the demo world's truth, {truth_file}; this campaign's images "
            "do not come from `manage.py demo_world`."
        )
    world = demo_world.load_truth(root.parent)
    index = {name: i for i, name in enumerate(world["names"].tolist())}
    size = world["truth"].shape[-1]
    by_hit: dict[int, list[HitImage]] = {}
    for slot in slots:
        by_hit.setdefault(slot.hit_id, []).append(slot)
    out = {}
    for hit_id, hit_slots in by_hit.items():
        own = [s for s in hit_slots if not s.gold]
        rows = [index[s.top_image.image.path] for s in own]
        masks = [_mask(s.top_image.segmentation.mask_path, size) for s in own]
        concepts = crowd.concept_masks(world["truth"][rows])
        out[hit_id] = HitTruth(
            crowd.unit_truth(masks, concepts), [s.position for s in own], [s.position for s in hit_slots if s.gold]
        )
    return out


def _mask(relative: str, size: int) -> np.ndarray:
    picture = artifacts.read_picture(relative).convert("L")
    if picture.size != (size, size):
        picture = picture.resize((size, size), PILImage.NEAREST)
    return np.asarray(picture) > 127


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
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def _answer_one(browser: _Browser, worker: crowd.SimulatedWorker, truths: dict[int, HitTruth]) -> bool:
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
    hit_truth = truths[Assignment.objects.values_list("hit_id", flat=True).get(external_id=external_id)]
    for attempt in range(3):
        answer = worker.answer(hit_truth.truth, hit_truth.own, hit_truth.gold, attempt)
        data = [
            ("csrfmiddlewaretoken", _csrf(page)),
            ("description", answer.description),
            ("category", answer.category),
        ] + [("mismatch", str(p)) for p in answer.marked]
        after, page, status = browser.open(url, data)
        if status != 200:
            raise CrowdError(f"{worker.name}'s answer was refused ({status}): {page[:300]}")
        if after != url or 'id="gold-warning"' not in page:
            return True
    raise CrowdError(f"{worker.name}'s third try was not stored.")


def crowd_simulate(*, campaign: Campaign, settings: CrowdSettings) -> CrowdReport:
    if campaign.backend != Campaign.Backend.LOCAL or campaign.status != Campaign.Status.PUBLISHED:
        raise CrowdError(f"Publish {campaign.name!r} locally first: manage.py publish {campaign.name} --backend local")
    if settings.workers < campaign.answers_per_unit:
        raise CrowdError(f"--workers must be at least the answers per unit ({campaign.answers_per_unit}).")
    truths = campaign_truth(campaign)
    rng = np.random.default_rng(settings.seed)
    spammers = round(settings.workers * settings.spammers)
    server = ThreadedWSGIServer(("127.0.0.1", 0), _Quiet)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    report = CrowdReport(workers=settings.workers, units=len(truths))
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
                if _answer_one(member[1], member[0], truths):
                    report.answers += 1
                else:
                    active.remove(member)
    finally:
        server.shutdown()
        server.server_close()
    report.scores = crowd_scores(campaign, truths)
    return report


def crowd_scores(campaign: Campaign, truths: dict[int, HitTruth]) -> dict[str, dict[str, float]]:
    """Label accuracy, category accuracy and mean precision error of each aggregation method against
    the truth; the deployment's own method runs last, so its labels are the ones stored."""
    hits = dict(campaign.hits.values_list("pk", "unit_id"))
    unit_ids = list(hits.values())
    scores = {}
    default = AggregationSettings.from_settings()
    for method in [m for m in METHODS if m != default.method] + [default.method]:
        try:
            units_aggregate(unit_ids=unit_ids, settings=AggregationSettings(default.threshold, method))
        except AggregationError:
            continue
        labels = {label.unit_id: label for label in UnitLabel.objects.filter(unit_id__in=unit_ids)}
        done = [(truths[h], labels[u]) for h, u in hits.items() if u in labels and labels[u].answers]
        if not done:
            continue
        scores[method] = {
            "units": len(done),
            "label_accuracy": sum(normalise(lab.label) == normalise(t.truth.concept) for t, lab in done) / len(done),
            "category_accuracy": sum(lab.category == t.truth.category for t, lab in done) / len(done),
            "precision_error": sum(abs((lab.precision or 0) - t.truth.precision) for t, lab in done) / len(done),
        }
    return scores
