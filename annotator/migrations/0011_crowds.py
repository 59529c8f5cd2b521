"""A campaign's `backend` becomes its platform and, for Mechanical Turk, its environment; the two
platforms' JSON records become one `crowd_state`; HITs' MTurk columns get the platform-neutral names
every crowd uses; workers carry the environment they belong to. Every campaign, HIT, answer and
worker is kept as it was."""

from django.db import migrations, models

MTURK = {"sandbox", "production"}


def campaigns_forward(apps, schema_editor) -> None:
    Campaign = apps.get_model("annotator", "Campaign")
    for campaign in Campaign.objects.all():
        backend = campaign.backend
        if backend in MTURK:
            campaign.platform, campaign.environment, campaign.crowd_state = "mturk", backend, campaign.mturk or {}
        elif backend == "prolific":
            campaign.platform, campaign.environment, campaign.crowd_state = "prolific", "", campaign.prolific or {}
        else:
            campaign.platform, campaign.environment, campaign.crowd_state = backend, "", {}
        campaign.save(update_fields=["platform", "environment", "crowd_state"])


def campaigns_backward(apps, schema_editor) -> None:
    Campaign = apps.get_model("annotator", "Campaign")
    for campaign in Campaign.objects.all():
        if campaign.platform == "mturk":
            campaign.backend, campaign.mturk = campaign.environment, campaign.crowd_state
        elif campaign.platform == "prolific":
            campaign.backend, campaign.prolific = "prolific", campaign.crowd_state
        else:
            campaign.backend = campaign.platform
        campaign.save(update_fields=["backend", "mturk", "prolific"])


def workers_forward(apps, schema_editor) -> None:
    """Each MTurk worker gets the environment of the campaigns they worked in; one who worked in both
    becomes two workers, each keeping the assignments, answers, bonuses and decisions of one."""
    Worker = apps.get_model("annotator", "Worker")
    Assignment = apps.get_model("annotator", "Assignment")
    Answer = apps.get_model("annotator", "Answer")
    Bonus = apps.get_model("annotator", "Bonus")
    ReviewAction = apps.get_model("annotator", "ReviewAction")
    for worker in Worker.objects.filter(kind="mturk"):
        environments = sorted(
            set(Assignment.objects.filter(worker=worker).values_list("hit__campaign__environment", flat=True))
            | set(Answer.objects.filter(worker=worker).values_list("hit__campaign__environment", flat=True))
        )
        environments = [e for e in environments if e] or [""]
        worker.environment = environments[0]
        worker.save(update_fields=["environment"])
        for environment in environments[1:]:
            twin = Worker.objects.create(
                kind=worker.kind, environment=environment, external_id=worker.external_id, blocked=worker.blocked,
                blocked_reason=worker.blocked_reason,
            )
            where = {"hit__campaign__environment": environment}
            Assignment.objects.filter(worker=worker, **where).update(worker=twin)
            answers = list(Answer.objects.filter(worker=worker, **where).values_list("pk", flat=True))
            Answer.objects.filter(pk__in=answers).update(worker=twin)
            Bonus.objects.filter(worker=worker, answer__in=answers).update(worker=twin)
            ReviewAction.objects.filter(worker=worker, answer__in=answers).update(worker=twin)


class Migration(migrations.Migration):
    dependencies = [
        ("annotator", "0010_prolific"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="platform",
            field=models.CharField(
                blank=True, help_text="The crowd it runs on (annotator.crowds); empty until published", max_length=32
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="environment",
            field=models.CharField(
                blank=True,
                help_text="The platform's environment, where it has several (MTurk: sandbox)",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="crowd_state",
            field=models.JSONField(
                blank=True, default=dict, help_text="The crowd's own record: publishing settings and the platform's ids"
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="task",
            field=models.CharField(
                default="describe", help_text="The kind of question its HITs ask (annotator.task_kinds)", max_length=32
            ),
        ),
        migrations.RunPython(campaigns_forward, campaigns_backward),
        migrations.RemoveConstraint(model_name="worker", name="worker_unique_id"),
        migrations.AddField(
            model_name="worker",
            name="environment",
            field=models.CharField(
                blank=True,
                help_text="The platform's environment the worker belongs to (MTurk: sandbox)",
                max_length=16,
            ),
        ),
        migrations.RunPython(workers_forward, migrations.RunPython.noop),
    ]
