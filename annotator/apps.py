from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnnotatorConfig(AppConfig):
    name = "annotator"
    verbose_name = "Unit annotator"

    def ready(self) -> None:
        from annotator.permissions import groups_ensure

        post_migrate.connect(groups_ensure, sender=self, dispatch_uid="annotator.groups")
