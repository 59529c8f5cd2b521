"""The second half of 0011: with the data moved, the old columns go and the new constraints come (a
migration of its own, so PostgreSQL never alters a table that the data migration has pending triggers on)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotator", "0011_crowds"),
    ]

    operations = [
        migrations.RemoveField(model_name="campaign", name="backend"),
        migrations.RemoveField(model_name="campaign", name="mturk"),
        migrations.RemoveField(model_name="campaign", name="prolific"),
        migrations.RenameField(model_name="campaign", old_name="mturk_synced_at", new_name="synced_at"),
        migrations.AlterField(
            model_name="campaign",
            name="synced_at",
            field=models.DateTimeField(blank=True, help_text="The platform's view was last mirrored", null=True),
        ),
        migrations.RenameField(model_name="hit", old_name="mturk_hit_id", new_name="remote_id"),
        migrations.RenameField(model_name="hit", old_name="mturk_status", new_name="remote_status"),
        migrations.RenameField(model_name="hit", old_name="mturk_expires_at", new_name="remote_expires_at"),
        migrations.RenameField(model_name="hit", old_name="mturk_counts", new_name="remote_counts"),
        migrations.AlterField(
            model_name="hit",
            name="remote_id",
            field=models.CharField(blank=True, help_text="The platform's id of this HIT, if it has one", max_length=64),
        ),
        migrations.AlterField(
            model_name="hit",
            name="remote_status",
            field=models.CharField(
                blank=True, help_text="The platform's state of it at the last sync", max_length=16
            ),
        ),
        migrations.AlterField(
            model_name="hit",
            name="remote_counts",
            field=models.JSONField(blank=True, default=dict, help_text="The platform's assignment counts"),
        ),
        migrations.AddConstraint(
            model_name="worker",
            constraint=models.UniqueConstraint(
                fields=("kind", "environment", "external_id"), name="worker_unique_platform_id"
            ),
        ),
        migrations.AlterField(
            model_name="worker",
            name="kind",
            field=models.CharField(help_text="account, link, imported, or the crowd platform's name", max_length=32),
        ),
        migrations.AlterField(
            model_name="worker",
            name="external_id",
            field=models.CharField(
                help_text="Username, link label, the platform's id or import id", max_length=200
            ),
        ),
        migrations.AlterField(
            model_name="answer",
            name="source",
            field=models.CharField(help_text="The crowd whose HIT it answers, or imported", max_length=32),
        ),
    ]
