"""The dissection half of the data model: network -> layers -> units; images -> top images ->
receptive fields and segmentations; and the label that aggregation gives each unit."""

from __future__ import annotations

from django.db import models

from annotator.models.choices import Category


class Network(models.Model):
    """A dissected network: how to rebuild it and how its inputs were prepared."""

    name = models.CharField(max_length=200, unique=True)
    architecture = models.CharField(max_length=300, blank=True, help_text="Built-in name or package.module:factory")
    weights = models.CharField(max_length=1000, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    input_size = models.PositiveIntegerField(null=True, blank=True)
    mean = models.JSONField(default=list, blank=True)
    std = models.JSONField(default=list, blank=True)
    bgr = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Layer(models.Model):
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=200, help_text="As the user named it: an alias (pool5) or a module name")
    module_name = models.CharField(max_length=200, blank=True)
    order = models.PositiveIntegerField(default=0)
    num_units = models.PositiveIntegerField(default=0)
    rf_theoretical_px = models.PositiveIntegerField(null=True, blank=True)
    rf_jump = models.PositiveIntegerField(null=True, blank=True)
    rf_start = models.FloatField(null=True, blank=True)
    map_height = models.PositiveIntegerField(null=True, blank=True)
    map_width = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["network", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["network", "name"], name="layer_unique_name")]

    def __str__(self) -> str:
        return f"{self.network.name}/{self.name}"


class Unit(models.Model):
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="units")
    index = models.PositiveIntegerField(help_text="0-based channel index")

    class Meta:
        ordering = ["layer", "index"]
        constraints = [models.UniqueConstraint(fields=["layer", "index"], name="unit_unique_index")]

    def __str__(self) -> str:
        return f"{self.layer}#{self.index}"

    @property
    def name(self) -> str:
        """How people call the unit in messages: its layer and its own number, never a database id."""
        return f"{self.layer.name} unit {self.index}"


def unit_name(unit_id: int) -> str:
    unit = Unit.objects.select_related("layer").filter(pk=unit_id).first()
    return unit.name if unit else "This unit"


class ImageSet(models.Model):
    root = models.CharField(max_length=1000, unique=True)

    def __str__(self) -> str:
        return self.root


class Image(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        OK = "ok"
        UNREADABLE = "unreadable"

    image_set = models.ForeignKey(ImageSet, on_delete=models.CASCADE, related_name="images")
    path = models.CharField(max_length=1000, help_text="POSIX path relative to the image set's root")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["image_set", "id"]
        constraints = [models.UniqueConstraint(fields=["image_set", "path"], name="image_unique_path")]

    def __str__(self) -> str:
        return self.path


class Dissection(models.Model):
    """One run of the pipeline over a network and an image set; its stage drives resumption."""

    class Stage(models.TextChoices):
        ACTIVATIONS = "activations"
        MERGING = "merging"
        PROBE_MAPS = "probe_maps"  # the four stages of the automatic labels (a no-op without a probe set)
        THRESHOLDS = "thresholds"
        TALLY = "tally"
        AUTO_LABELS = "auto_labels"
        SWEEPS = "sweeps"
        SEGMENTATION = "segmentation"
        DONE = "done"

    network = models.OneToOneField(Network, on_delete=models.CASCADE, related_name="dissection")
    image_set = models.ForeignKey(ImageSet, on_delete=models.PROTECT, related_name="dissections")
    settings = models.JSONField(default=dict)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.ACTIVATIONS)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"dissection of {self.network.name} ({self.stage})"

    @property
    def image_count(self) -> int:
        """How many images the dissection reads (fixed when it starts). The command's other settings
        are read by `services.dissection_setup.settings_of`."""
        return int(self.settings.get("image_count") or 0)


class ActivationChunk(models.Model):
    """A contiguous run of images whose top-K per unit is computed as one resumable step."""

    dissection = models.ForeignKey(Dissection, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    first_image = models.PositiveIntegerField(help_text="Position in the dissection's image order")
    image_count = models.PositiveIntegerField()
    done = models.BooleanField(default=False)

    class Meta:
        ordering = ["dissection", "index"]
        constraints = [models.UniqueConstraint(fields=["dissection", "index"], name="chunk_unique_index")]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.dissection_id}"


class TopImage(models.Model):
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="top_images")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="top_of")
    rank = models.PositiveIntegerField(help_text="0 = the unit's strongest image")
    score = models.FloatField(help_text="The unit's maximum over spatial positions")
    argmax_y = models.PositiveIntegerField()
    argmax_x = models.PositiveIntegerField()

    class Meta:
        ordering = ["unit", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["unit", "rank"], name="topimage_unique_rank"),
            models.UniqueConstraint(fields=["unit", "image"], name="topimage_unique_image"),
        ]

    def __str__(self) -> str:
        return f"unit {self.unit_id} rank {self.rank}"


class ImageSweep(models.Model):
    """The occlusion sweep (and feature maps) of one unique top image, shared by all its units."""

    dissection = models.ForeignKey(Dissection, on_delete=models.CASCADE, related_name="sweeps")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="sweeps")
    occluded = models.BooleanField(default=False, help_text="Some unit uses it for its RF")
    done = models.BooleanField(default=False)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dissection", "image"], name="sweep_unique_image")]

    def __str__(self) -> str:
        return f"sweep of image {self.image_id}"


class ReceptiveField(models.Model):
    """A unit's empirical RF; its existence marks the unit's segmentation as complete."""

    unit = models.OneToOneField(Unit, on_delete=models.CASCADE, related_name="receptive_field")
    empirical_px = models.FloatField()
    images_used = models.PositiveIntegerField()
    map_path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT (.npy)")
    picture_path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT (.png)")

    def __str__(self) -> str:
        return f"RF of unit {self.unit_id}: {self.empirical_px:.0f} px"


class Segmentation(models.Model):
    top_image = models.OneToOneField(TopImage, on_delete=models.CASCADE, related_name="segmentation")
    mask_path = models.CharField(max_length=500)
    rendered_path = models.CharField(max_length=500)
    coverage = models.FloatField(help_text="Share of the image's pixels inside the mask")

    def __str__(self) -> str:
        return f"segmentation of {self.top_image_id}"


class UnitLabel(models.Model):
    """What annotation concluded about a unit (filled by aggregation)."""

    Category = Category

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DETECTOR = "detector", "detector"
        NOT_DETECTOR = "not_detector", "not a detector"
        NEEDS_REVIEW = "needs_review", "needs review"

    unit = models.OneToOneField(Unit, on_delete=models.CASCADE, related_name="label")
    label = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    precision = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    answers = models.PositiveIntegerField(default=0)
    answers_needed = models.PositiveIntegerField(default=0)
    label_agreement = models.FloatField(null=True, blank=True, help_text="Share of answers giving the label")
    category_agreement = models.FloatField(null=True, blank=True, help_text="Share of answers giving the category")
    flags = models.JSONField(default=list, blank=True, help_text="Why the unit needs review")
    threshold = models.FloatField(null=True, blank=True, help_text="The detector threshold aggregation used")
    method = models.CharField(max_length=32, blank=True, help_text="How aggregation chose the category")
    # A reviewer's decision, kept beside the crowd's (which aggregation keeps recomputing).
    review_label = models.CharField(max_length=200, blank=True)
    review_category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    review_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    reviewed_by = models.CharField(max_length=150, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.unit_id}: {self.label or self.status}"

    @property
    def final_label(self) -> str:
        return self.review_label or self.label

    @property
    def final_category(self) -> str:
        return self.review_category or self.category

    @property
    def final_status(self) -> str:
        return self.review_status or self.status

    @property
    def final_status_label(self) -> str:
        """The status in words, for people (pages and exports for reading)."""
        return self.Status(self.final_status).label

    @property
    def is_detector(self) -> bool:
        """The one rule for "is this unit a detector": its stored status (aggregation's, or a reviewer's),
        never a second computation from the precision."""
        return self.final_status in (self.Status.DETECTOR, self.Status.NEEDS_REVIEW)


class AutoLabel(models.Model):
    """A label from an automatic method, shown beside the crowd's: Network Dissection's, imported from its
    tally.csv ("netdissect") or computed here on a Broden probe set ("iou")."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="auto_labels")
    source = models.CharField(max_length=32, default="netdissect")
    label = models.CharField(max_length=200)
    category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    source_category = models.CharField(max_length=32, blank=True, help_text="As the file names it (material, ...)")
    score = models.FloatField(help_text="NetDissect's IoU")
    detector = models.BooleanField(help_text="Score at or above the detector IoU (0.04 unless the import said)")
    threshold = models.FloatField(null=True, blank=True, help_text="The activation level of the unit's masks")
    examples = models.JSONField(default=list, blank=True, help_text="Pictures of the unit's mask on its label")

    class Meta:
        ordering = ["unit", "source"]
        constraints = [models.UniqueConstraint(fields=["unit", "source"], name="autolabel_unique_source")]

    def __str__(self) -> str:
        return f"{self.unit_id}: {self.label} ({self.source})"
