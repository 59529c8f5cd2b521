from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotator", "0012_crowds_cleanup"),
    ]

    operations = [
        migrations.AddField(
            model_name="unitlabel",
            name="threshold",
            field=models.FloatField(blank=True, help_text="The detector threshold aggregation used", null=True),
        ),
        migrations.AddField(
            model_name="unitlabel",
            name="method",
            field=models.CharField(blank=True, help_text="How aggregation chose the category", max_length=32),
        ),
    ]
