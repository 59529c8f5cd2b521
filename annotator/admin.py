from django import forms
from django.contrib import admin

from annotator import models, selectors
from annotator.crowds import DEFAULT_BACKEND, crowds
from annotator.errors import ActionRefused
from annotator.services.assignments import assignments_expire
from annotator.services.campaigns import CampaignError, CampaignSettings, campaign_create, campaign_plan
from annotator.services.crowd_actions import campaign_publish, publish_plan
from annotator.task_kinds import tasks


@admin.register(models.Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "input_size", "created_at")
    search_fields = ("name",)


@admin.register(models.Layer)
class LayerAdmin(admin.ModelAdmin):
    list_display = ("network", "name", "module_name", "num_units", "rf_theoretical_px")
    list_filter = ("network",)


@admin.register(models.Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ("layer", "index")
    list_filter = ("layer__network", "layer")
    list_select_related = ("layer__network",)


@admin.register(models.ImageSet)
class ImageSetAdmin(admin.ModelAdmin):
    list_display = ("root",)


@admin.register(models.Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("path", "image_set", "status")
    list_filter = ("status", "image_set")
    search_fields = ("path",)


@admin.register(models.Dissection)
class DissectionAdmin(admin.ModelAdmin):
    list_display = ("network", "stage", "created_at", "finished_at")


@admin.register(models.ActivationChunk)
class ActivationChunkAdmin(admin.ModelAdmin):
    list_display = ("dissection", "index", "first_image", "image_count", "done")


@admin.register(models.TopImage)
class TopImageAdmin(admin.ModelAdmin):
    list_display = ("unit", "rank", "image", "score")
    list_select_related = ("unit__layer__network", "image")
    raw_id_fields = ("unit", "image")


@admin.register(models.ImageSweep)
class ImageSweepAdmin(admin.ModelAdmin):
    list_display = ("dissection", "image", "occluded", "done", "seconds")
    raw_id_fields = ("image",)


@admin.register(models.ReceptiveField)
class ReceptiveFieldAdmin(admin.ModelAdmin):
    list_display = ("unit", "empirical_px", "images_used")
    list_select_related = ("unit__layer__network",)


@admin.register(models.Segmentation)
class SegmentationAdmin(admin.ModelAdmin):
    list_display = ("top_image", "coverage")
    raw_id_fields = ("top_image",)


@admin.register(models.UnitLabel)
class UnitLabelAdmin(admin.ModelAdmin):
    list_display = ("unit", "label", "category", "precision", "status")
    list_filter = ("status", "category")


# Annotation ---------------------------------------------------------------------------------------


class CampaignCreateForm(forms.ModelForm):
    """The dashboard's "add campaign": the same checks and the same service as `create_campaign`."""

    task = forms.ChoiceField(
        choices=lambda: [(name, task.label) for name, task in tasks().items()],
        required=False,
        help_text="The kind of question its HITs ask (the first when left empty)",
    )

    class Meta:
        model = models.Campaign
        fields = [
            "name",
            "network",
            "layers",
            "answers_per_unit",
            "images_per_hit",
            "gold_per_hit",
            "reward",
            "assignment_minutes",
            "instructions",
        ]

    def settings(self) -> CampaignSettings:
        data = self.cleaned_data
        return CampaignSettings(
            answers_per_unit=data["answers_per_unit"],
            images_per_hit=data["images_per_hit"],
            gold_per_hit=data["gold_per_hit"],
            reward=data["reward"],
            assignment_minutes=data["assignment_minutes"],
            instructions=data.get("instructions", ""),
            task=data.get("task", ""),
        )

    def clean(self) -> dict:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            campaign_plan(
                name=data["name"],
                network=data["network"].name,
                layers=[layer.name for layer in data["layers"]],
                settings=self.settings(),
            )
        except CampaignError as error:
            raise forms.ValidationError(str(error)) from error
        return data


@admin.register(models.Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "network",
        "task",
        "platform",
        "environment",
        "status",
        "answers_per_unit",
        "reward",
        "progress",
        "created_at",
    )
    list_filter = ("status", "platform", "task")
    readonly_fields = ("task", "platform", "environment", "status", "published_at", "progress")
    actions = ["publish_local"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CampaignCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            *self.readonly_fields,
            "name",
            "network",
            "layers",
            "answers_per_unit",
            "images_per_hit",
            "gold_per_hit",
        )

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        created = campaign_create(
            name=obj.name,
            network=obj.network.name,
            layers=[layer.name for layer in form.cleaned_data["layers"]],
            settings=form.settings(),
        )
        obj.pk = created.pk
        obj._state.adding = False

    @admin.display(description="progress")
    def progress(self, obj: models.Campaign) -> str:
        counts = selectors.campaign_progress(obj).counts
        return (
            f"{counts['complete']}/{counts['hits']} HITs done, {counts['answers']}/{counts['needed']} answers, "
            f"{counts['open']} open"
        )

    @admin.action(description="Publish to local annotators")
    def publish_local(self, request, queryset) -> None:
        for campaign in queryset:
            try:
                plan = publish_plan(campaign=campaign, backend=DEFAULT_BACKEND, options={})
                campaign_publish(campaign=campaign, plan=plan, actor=request.user.get_username())
                self.message_user(request, f"Published {campaign.name} to local annotators.")
            except ActionRefused as error:
                self.message_user(request, str(error), level="error")


@admin.register(models.Hit)
class HitAdmin(admin.ModelAdmin):
    list_display = ("campaign", "unit", "unit_images", "remote_id", "key")
    list_filter = ("campaign",)
    list_select_related = ("campaign", "unit__layer__network")
    raw_id_fields = ("unit",)


@admin.register(models.Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "kind", "user", "created_at")
    list_filter = ("kind",)
    search_fields = ("external_id",)


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("external_id", "hit", "worker", "status", "slot", "opened_at", "expires_at", "gold_warnings")
    list_filter = ("status", "hit__campaign")
    list_select_related = ("hit__campaign", "worker")
    raw_id_fields = ("hit", "worker")
    actions = ["expire_abandoned"]

    @admin.action(description="Return expired open assignments to the pool")
    def expire_abandoned(self, request, queryset) -> None:
        self.message_user(request, f"{assignments_expire()} assignment(s) returned to the pool.")


@admin.register(models.Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = (
        "unit",
        "worker",
        "description",
        "category",
        "precision",
        "gold_passed",
        "source",
        "review",
        "counts",
        "confirmation",
        "held",
        "submitted_at",
    )
    list_filter = ("source", "review", "counts", "confirmation", "held", "category", "hit__campaign")
    readonly_fields = ("counts",)  # decided by services.answers.hit_answers_settle alone
    list_select_related = ("unit__layer__network", "worker")
    raw_id_fields = ("unit", "hit", "assignment", "worker")
    search_fields = ("description",)


@admin.register(models.AutoLabel)
class AutoLabelAdmin(admin.ModelAdmin):
    list_display = ("unit", "source", "label", "source_category", "score", "detector")
    list_filter = ("source", "detector", "category")
    list_select_related = ("unit__layer__network",)
    raw_id_fields = ("unit",)


@admin.register(models.ReviewAction)
class ReviewActionAdmin(admin.ModelAdmin):
    """The record of who did what: read only."""

    list_display = ("created_at", "actor", "action", "unit", "answer", "worker")
    list_filter = ("action", "actor")
    list_select_related = ("unit__layer__network", "worker")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# "View site" in the admin leads to the review dashboard.
admin.site.site_url = "/dashboard/"
admin.site.site_header = "Unit annotator"


for crowd in crowds().values():  # each platform's own records (annotator/crowds/)
    crowd.register_admin(admin.site)
