"""The presence task's rows: the images each unit's label is asked about (its draws, with their
weights) and what the ratings concluded about the label beyond the unit's top images."""

from __future__ import annotations

from django.db import models

from annotator.models.annotation import Campaign
from annotator.models.dissection import Image, Unit


class PresenceDraw(models.Model):
    """One image a unit's label is asked about: drawn by importance sampling over the probe set (it
    stands for `weight` probe images), or one of the unit's top images (weight 1)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="presence_draws")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="presence_draws")
    label = models.CharField(max_length=200)
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    order = models.PositiveIntegerField(help_text="The draw's place in the unit's sample")
    weight = models.FloatField()
    top = models.BooleanField(default=False)
    activation = models.FloatField(help_text="The unit's standardised score on the image")
    prior = models.FloatField(help_text="P(label in image) before ratings: the proxy's score, or the default")

    class Meta:
        ordering = ["campaign", "unit", "order"]
        constraints = [models.UniqueConstraint(fields=["campaign", "unit", "order"], name="draw_unique_order")]

    def __str__(self) -> str:
        return f"draw {self.order} of unit {self.unit_id}: image {self.image_id}"


class UnitEvaluation(models.Model):
    """Whether a unit's label holds beyond its top images (one presence campaign's ratings): the
    importance-weighted correlation between activation and label with its bootstrap interval, the top
    images' precision, recall, F1 and IoU against the label, its base rate, and the paper's precision."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="evaluations")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="evaluations")
    label = models.CharField(max_length=200)
    rho = models.FloatField(null=True, blank=True)
    rho_low = models.FloatField(null=True, blank=True)
    rho_high = models.FloatField(null=True, blank=True)
    base_rate = models.FloatField(null=True, blank=True)
    precision = models.FloatField(null=True, blank=True, help_text="Of the top images, against c >= 0.5")
    recall = models.FloatField(null=True, blank=True)
    f1 = models.FloatField(null=True, blank=True)
    iou = models.FloatField(null=True, blank=True)
    paper_precision = models.FloatField(null=True, blank=True, help_text="The describe campaign's precision")
    images = models.PositiveIntegerField(default=0, help_text="Draws with at least one counted rating")
    ratings = models.PositiveIntegerField(default=0)
    flip = models.FloatField(null=True, blank=True, help_text="The raters' flip rate the posteriors used")
    flags = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["unit", "campaign"]
        constraints = [models.UniqueConstraint(fields=["unit", "campaign"], name="evaluation_unique_campaign")]

    def __str__(self) -> str:
        return f"unit {self.unit_id}: {self.label} rho {self.rho}"
