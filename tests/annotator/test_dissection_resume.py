"""Interrupting a dissection (Ctrl-C) and running the same command again finishes it without
redoing finished steps, and gives exactly what an uninterrupted run gives."""

import pytest
from django.core.management import call_command

from annotator.models import ActivationChunk, Dissection, ImageSweep
from annotator.services import dissection as service
from tests.annotator.helpers import dissect_args, snapshot

pytestmark = pytest.mark.django_db


def interrupt_after(monkeypatch, step: str, allowed: int) -> list:
    """Let `allowed` calls of `step` through, then raise KeyboardInterrupt as Ctrl-C would."""
    original = dict(service.STEPS)
    calls = []

    def counted(name):
        def run(dissection_id, ident):
            if name == step and len([c for c in calls if c[0] == step]) >= allowed:
                raise KeyboardInterrupt
            calls.append((name, ident))
            original[name](dissection_id, ident)

        return run

    monkeypatch.setattr(service, "STEPS", {name: counted(name) for name in original})
    return calls


@pytest.mark.parametrize("step,allowed", [("activation_chunk", 2), ("image_sweep", 5), ("unit_segment", 7)])
def test_interrupted_run_resumes_without_redoing_work(image_dir, monkeypatch, step, allowed):
    call_command(*dissect_args(image_dir, name="reference", layers="conv3"))
    expected = snapshot("reference")

    calls = interrupt_after(monkeypatch, step, allowed)
    with pytest.raises(SystemExit) as stop:
        call_command(*dissect_args(image_dir, layers="conv3"))
    assert stop.value.code == 130
    first_run = list(calls)
    assert len([c for c in first_run if c[0] == step]) == allowed
    assert Dissection.objects.get(network__name="demo").stage != Dissection.Stage.DONE

    calls.clear()
    monkeypatch.undo()
    calls = interrupt_after(monkeypatch, "never", 0)
    call_command(*dissect_args(image_dir, layers="conv3"))
    assert not set(first_run) & set(calls), "a finished step ran again"
    assert snapshot("demo") == expected
    demo = Dissection.objects.get(network__name="demo")
    assert demo.stage == Dissection.Stage.DONE
    assert ActivationChunk.objects.filter(dissection=demo, done=False).count() == 0
    assert ImageSweep.objects.filter(dissection=demo, done=False).count() == 0
