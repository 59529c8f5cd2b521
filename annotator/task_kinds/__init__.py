"""The kinds of question a HIT can ask, and the one place that picks a campaign's: `task_for`.

settings.HIT_TASKS lists them (the first is the default of a new campaign); each is a `base.Task`."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from annotator.errors import ActionRefused
from annotator.task_kinds.base import ImportFormat, PageSlot, Simulation, Task

if TYPE_CHECKING:
    from annotator.models import Answer, Campaign, Hit

__all__ = [
    "ImportFormat",
    "PageSlot",
    "Simulation",
    "Task",
    "default_task",
    "task_for",
    "task_for_answer",
    "task_named",
    "tasks",
]


@functools.cache
def _load(paths: tuple[str, ...]) -> dict[str, Task]:
    return {task.name: task for task in (import_string(path)() for path in paths)}


def tasks() -> dict[str, Task]:
    return _load(tuple(settings.HIT_TASKS))


def task_named(name: str) -> Task:
    task = tasks().get(name)
    if task is None:
        raise ActionRefused(f"No HIT task is named {name!r} (known: {', '.join(tasks())}).")
    return task


def default_task() -> Task:
    """A new campaign's task, and the task of imported answers (the authors' released answers are the
    paper's three-task HIT's)."""
    return next(iter(tasks().values()))


def task_for(campaign: Campaign) -> Task:
    return task_named(campaign.task)


def task_for_hit(hit: Hit) -> Task:
    return task_for(hit.campaign)


def task_for_answer(answer: Answer) -> Task:
    return default_task() if answer.hit is None else task_for(answer.hit.campaign)
