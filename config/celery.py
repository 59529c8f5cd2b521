"""The one Celery app, configured from Django settings (every CELERY_* setting lives there)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("unit_annotator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
