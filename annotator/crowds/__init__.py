"""The crowds a campaign can run on, and the one place that picks a campaign's: `crowd_for`.

Each crowd is an adapter of `base.Crowd` in its own module; settings.CROWDS lists them (one line
each), so a new crowd is one new module and one line there. Nothing outside the adapters knows a
platform: it asks the campaign's crowd (or an answer's, or a worker's)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from annotator.crowds.base import Backend, CampaignMoney, Crowd, CrowdError, LifecycleReport, Option, PublishPlan

if TYPE_CHECKING:
    from django.urls import URLPattern

    from annotator.models import Answer, Campaign, Worker

__all__ = [
    "Backend",
    "CampaignMoney",
    "Crowd",
    "CrowdError",
    "LifecycleReport",
    "Option",
    "PublishPlan",
    "backend_named",
    "backends",
    "crowd_for",
    "crowd_for_answer",
    "crowd_for_worker",
    "crowd_named",
    "crowd_urlpatterns",
    "crowds",
    "pool_platforms",
    "synced_platforms",
    "DEFAULT_BACKEND",
]

DEFAULT_BACKEND = "local"  # the embedded default: lab annotators on this site's own pages


@functools.cache
def _load(paths: tuple[str, ...]) -> dict[str, Crowd]:
    found: dict[str, Crowd] = {}
    for path in paths:
        crowd = import_string(path)()
        if crowd.name in found:
            raise CrowdError(f"Two crowds are named {crowd.name!r} in settings.CROWDS.")
        found[crowd.name] = crowd
    return found


def crowds() -> dict[str, Crowd]:
    """Every registered crowd by name, in settings.CROWDS' order."""
    return _load(tuple(settings.CROWDS))


def crowd_named(name: str) -> Crowd:
    crowd = crowds().get(name)
    if crowd is None:
        raise CrowdError(f"No crowd is named {name!r} (known: {', '.join(crowds())}).")
    return crowd


def crowd_for(campaign: Campaign) -> Crowd:
    """The crowd a campaign runs on. A draft campaign has none yet: its answers, if any, are local."""
    return crowd_named(campaign.platform or DEFAULT_BACKEND)


def crowd_for_answer(answer: Answer) -> Crowd:
    """The crowd that vouches for an answer: the one it came through (`Answer.source`; imported answers:
    the local crowd, which makes no platform calls)."""
    return crowds().get(answer.source) or crowd_named(DEFAULT_BACKEND)


def crowd_for_worker(worker: Worker) -> Crowd:
    """The platform a worker belongs to (local accounts, lab links and imported ids: the local crowd)."""
    return crowds().get(worker.kind) or crowd_named(DEFAULT_BACKEND)


def backends() -> dict[str, Backend]:
    """What `publish --backend` takes: each crowd's names (MTurk: sandbox and production)."""
    return {backend.name: backend for crowd in crowds().values() for backend in crowd.backends}


def backend_of(campaign: Campaign) -> Backend | None:
    """The backend a published campaign runs on (None for a draft)."""
    for backend in backends().values():
        if (backend.platform, backend.environment) == (campaign.platform, campaign.environment):
            return backend
    return None


def default_backend() -> Backend:
    """What `publish` uses without --backend: the one a crowd marks as default, else the first."""
    every = list(backends().values())
    return next((backend for backend in every if backend.default), every[0])


def backend_named(name: str) -> Backend:
    backend = backends().get(name)
    if backend is None:
        raise CrowdError(f"Unknown backend {name!r}; use one of {', '.join(backends())}.")
    return backend


def pool_platforms() -> list[str]:
    """Crowds whose HITs signed-in annotators take from the pool (`selectors.hits_available`)."""
    return [name for name, crowd in crowds().items() if crowd.pool]


def synced_platforms() -> list[str]:
    """Crowds whose campaigns sync mirrors (the periodic task, `manage.py sync` without names)."""
    return [name for name, crowd in crowds().items() if crowd.syncs]


def crowd_urlpatterns() -> list[URLPattern]:
    return [pattern for crowd in crowds().values() for pattern in crowd.urls()]
