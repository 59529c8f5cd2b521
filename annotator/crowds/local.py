"""Local annotators: lab members with an account or a lab link take HITs from the pool on this site's
own pages (`annotator/views/annotate.py`). Their answers are confirmed as they arrive (the site signs
them in), nothing is paid through the tool, and there is no platform to sync or block on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.urls import reverse

from annotator.crowds.base import Backend, Crowd, PublishPlan
from annotator.models import Campaign


class LocalCrowd(Crowd):
    name = "local"
    label = "Local annotators"
    backends = (Backend("local", "local", "", "Local annotators"),)
    pool = True

    def publish_plan(self, campaign: Campaign, backend: Backend, options: dict[str, Any]) -> PublishPlan:
        return PublishPlan(
            backend=backend,
            where="local annotators (no money)",
            text=f"{campaign.hits.count()} HITs for annotators signed in on this site",
        )

    def publish(
        self, campaign: Campaign, plan: PublishPlan, *, actor: str, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        from annotator import selectors

        counts = selectors.campaign_counts(campaign)
        return [
            f"Published {campaign.name!r} on local: {counts['hits']} HITs, {counts['answers']} of "
            f"{counts['needed']} answers in. Annotators start at {settings.SITE_URL}{reverse('annotate-home')}"
        ]
