"""The annotation half of the data model: campaign -> HITs (one a unit) -> image slots; workers take
assignments of HITs and each assignment yields at most one answer.

Every crowd shares these rows: its adapter (`annotator.crowds`) only decides how HITs reach workers,
how assignments are created (claimed here, or opened from the platform's ids) and when the platform
vouches for an answer."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotator.models.choices import Category
from annotator.models.dissection import Image, Layer, Network, TopImage, Unit


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        FINISHED = "finished"

    name = models.CharField(max_length=200, unique=True)
    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="campaigns")
    layers = models.ManyToManyField(Layer, related_name="campaigns")
    task = models.CharField(
        max_length=32, default="describe", help_text="The kind of question its HITs ask (annotator.task_kinds)"
    )
    answers_per_unit = models.PositiveIntegerField(default=3)
    images_per_hit = models.PositiveIntegerField(default=60, help_text="Image slots, gold included")
    gold_per_hit = models.PositiveIntegerField(default=3)
    reward = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("0.10"))
    assignment_minutes = models.PositiveIntegerField(
        default=30, help_text="An opened HIT not answered in this time returns to the pool"
    )
    instructions = models.TextField(blank=True, help_text="Shown above the standard instructions")
    platform = models.CharField(
        max_length=32, blank=True, help_text="The crowd it runs on (annotator.crowds); empty until published"
    )
    environment = models.CharField(
        max_length=16, blank=True, help_text="The platform's environment, where it has several (MTurk: sandbox)"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    crowd_state = models.JSONField(
        default=dict, blank=True, help_text="The crowd's own record: publishing settings and the platform's ids"
    )
    synced_at = models.DateTimeField(null=True, blank=True, help_text="The platform's view was last mirrored")
    task_settings = models.JSONField(
        default=dict, blank=True, help_text="The task's own record (a presence campaign: its source and draws)"
    )
    reviewers_see_automatic = models.BooleanField(
        default=True,
        help_text="Until it finishes, the dashboard shows its units' automatic labels; off, a blind review "
        "(annotators never see them)",
    )

    def __str__(self) -> str:
        return self.name


class Hit(models.Model):
    """One unit's task (describe), or one label's images from several units (presence: `label`, no
    unit). `key` is the public, unguessable name used in URLs (also MTurk's ExternalURL)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="hits")
    unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="hits")
    label = models.CharField(max_length=200, blank=True, help_text="What a presence HIT asks is in its images")
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    unit_images = models.PositiveIntegerField(help_text="Slots holding the unit's own images (precision's divisor)")
    remote_id = models.CharField(max_length=64, blank=True, help_text="The platform's id of this HIT, if it has one")
    extra_answers = models.PositiveIntegerField(
        default=0, help_text="Answers a reviewer asked for beyond the campaign's (sent back for more)"
    )
    remote_status = models.CharField(max_length=16, blank=True, help_text="The platform's state of it at the last sync")
    remote_expires_at = models.DateTimeField(null=True, blank=True)
    remote_counts = models.JSONField(default=dict, blank=True, help_text="The platform's assignment counts")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "unit"], name="hit_unique_unit")]

    def __str__(self) -> str:
        return f"{self.campaign.name}: unit {self.unit_id}"

    @property
    def answers_wanted(self) -> int:
        return self.campaign.answers_per_unit + self.extra_answers

    @staticmethod
    def answers_wanted_expression() -> models.Expression:
        """`answers_wanted` in a query."""
        return models.F("campaign__answers_per_unit") + models.F("extra_answers")


class HitImage(models.Model):
    """An image slot of a HIT: one of the unit's segmented top images, or a gold image of another unit
    (known not to match, so a careful worker marks it); in a presence HIT, a whole probe image
    (`image`, shown as `picture`), gold where its answer is known (`truth`)."""

    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveIntegerField()
    top_image = models.ForeignKey(TopImage, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    picture = models.CharField(max_length=500, blank=True, help_text="The shown picture, where not a segmentation")
    gold = models.BooleanField(default=False)
    truth = models.BooleanField(null=True, blank=True, help_text="A presence gold image's known answer")

    class Meta:
        ordering = ["hit", "position"]
        constraints = [models.UniqueConstraint(fields=["hit", "position"], name="hitimage_unique_position")]

    def __str__(self) -> str:
        return f"slot {self.position} of HIT {self.hit_id}{' (gold)' if self.gold else ''}"


class Worker(models.Model):
    """Whoever answers: a local account, a lab-session link, a crowd platform's worker (their kind is
    the platform's name, and `environment` the platform's environment they were met in), or an
    imported id."""

    class Kind(models.TextChoices):
        """The kinds that are not a platform's."""

        ACCOUNT = "account"
        LINK = "link", "Lab link"
        IMPORTED = "imported"

    kind = models.CharField(max_length=32, help_text="account, link, imported, or the crowd platform's name")
    environment = models.CharField(
        max_length=16, blank=True, help_text="The platform's environment the worker belongs to (MTurk: sandbox)"
    )
    external_id = models.CharField(max_length=200, help_text="Username, link label, the platform's id or import id")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="worker"
    )
    blocked = models.BooleanField(default=False, help_text="Blocked from our HITs (on MTurk: a worker block)")
    blocked_reason = models.CharField(max_length=1024, blank=True)
    link_version = models.PositiveIntegerField(
        default=1, help_text="A lab link names the version it was made for: revoking a link moves this on"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "environment", "external_id"], name="worker_unique_platform_id")
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.kind})"


class Assignment(models.Model):
    """A worker's turn at a HIT. Local assignments hold one of the HIT's answer slots (a unique
    (hit, slot) pair is what stops two workers claiming the last one); MTurk's carry its AssignmentId."""

    class Status(models.TextChoices):
        OPEN = "open"
        SUBMITTED = "submitted"
        ABANDONED = "abandoned"

    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="assignments")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="assignments")
    external_id = models.CharField(max_length=64, unique=True, help_text="MTurk's AssignmentId, or ours")
    slot = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    gold_warnings = models.PositiveIntegerField(default=0, help_text="Tries refused for unmarked gold images")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hit", "slot"], name="assignment_unique_slot"),
            models.UniqueConstraint(
                fields=["hit", "worker"], condition=~Q(status="abandoned"), name="assignment_unique_worker"
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return self.external_id


class Answer(models.Model):
    """One worker's answer to one HIT: the describe task's three tasks for one unit, or a presence
    HIT's yes/no per image (`ratings`; no unit: its images are several units'). Answers from HITs point
    at their assignment (stored once per assignment); imported answers have only the unit and worker."""

    class Source(models.TextChoices):
        """Sources that are not a crowd's (a HIT's answer has its crowd's name)."""

        IMPORTED = "imported"

    class Review(models.TextChoices):
        SUBMITTED = "submitted"
        APPROVED = "approved"
        REJECTED = "rejected", "Rejected (left out of aggregation)"

    class Confirmation(models.TextChoices):
        """Whether the platform vouches for the answer: anyone who saw a HIT's URL can post to its page,
        so an MTurk answer is only as good as MTurk's word that its assignment exists."""

        CONFIRMED = "confirmed"
        UNCONFIRMED = "unconfirmed", "Unconfirmed (sync has not seen it on MTurk or Prolific yet)"
        UNKNOWN = "unknown", "Unknown to MTurk (its assignment's deadline passed and MTurk does not list it)"
        MISMATCH = "mismatch", "Another worker's (the platform lists its assignment under another worker id)"

    class Held(models.TextChoices):
        """Why an answer that arrived is kept but was never wanted."""

        NONE = "", "Nothing"
        LATE = "late", "Sent after its campaign finished"
        BLOCKED = "blocked", "Sent by a blocked worker"
        RETURNED = "returned", "Its Prolific submission was returned or timed out"

    unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.CASCADE, related_name="answers")
    hit = models.ForeignKey(Hit, null=True, blank=True, on_delete=models.CASCADE, related_name="answers")
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.CASCADE, related_name="answer"
    )
    worker = models.ForeignKey(Worker, null=True, blank=True, on_delete=models.PROTECT, related_name="answers")
    source = models.CharField(max_length=32, help_text="The crowd whose HIT it answers, or imported")
    description = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    marked = models.JSONField(default=list, blank=True, help_text="Slot positions marked 'does not match'")
    precision = models.FloatField(null=True, blank=True, help_text="Share of the unit's images not marked")
    ratings = models.JSONField(default=dict, blank=True, help_text="A presence answer: slot position -> yes")
    gold_total = models.PositiveIntegerField(default=0)
    gold_marked = models.PositiveIntegerField(default=0)
    gold_warnings = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    import_key = models.CharField(
        max_length=300,
        null=True,
        blank=True,
        unique=True,
        help_text="File, row and answer of an imported answer: re-imports add nothing",
    )
    review = models.CharField(max_length=16, choices=Review.choices, default=Review.SUBMITTED)
    feedback = models.CharField(max_length=1024, blank=True, help_text="The reviewer's words to the worker")
    confirmation = models.CharField(max_length=16, choices=Confirmation.choices, default=Confirmation.CONFIRMED)
    held = models.CharField(max_length=16, choices=Held.choices, blank=True, default=Held.NONE)
    counts = models.BooleanField(
        default=False,
        db_index=True,
        help_text=(
            "Counts for aggregation, the HIT's answer count and the figures "
            "(set by services.answers.hit_answers_settle alone)"
        ),
    )

    class Meta:
        ordering = ["unit", "id"]

    def __str__(self) -> str:
        return f"{self.unit_id}: {self.description}"

    def via_hit(self) -> tuple[Hit, Assignment, Worker]:
        """The HIT, assignment and worker of an answer that came through a HIT page (every crowd's
        are); an imported answer has none, and asking is a programming error."""
        if self.hit is None or self.assignment is None or self.worker is None:
            raise ValueError(f"Answer {self.pk} came through no HIT (it was imported).")
        return self.hit, self.assignment, self.worker

    @property
    def gold_passed(self) -> bool | None:
        return None if not self.gold_total else self.gold_marked == self.gold_total

    @property
    def trusted(self) -> bool:
        """Vouched for and wanted: the platform confirms it, nothing held it back, no reviewer rejected it.
        Whether it counts also depends on the answers before it (see `hit_answers_settle`)."""
        return (
            self.confirmation == self.Confirmation.CONFIRMED and not self.held and self.review != self.Review.REJECTED
        )

    @classmethod
    def trusted_q(cls) -> Q:
        """`trusted` in a query."""
        return Q(confirmation=cls.Confirmation.CONFIRMED, held=cls.Held.NONE) & ~Q(review=cls.Review.REJECTED)

    @property
    def excluded_because(self) -> str:
        """Why the answer does not count, in words for the dashboard; empty when it counts."""
        if self.counts:
            return ""
        if self.review == self.Review.REJECTED:
            return "rejected by a reviewer"
        if self.confirmation == self.Confirmation.UNCONFIRMED and self.hit is not None:
            from annotator.crowds import crowd_for  # the crowds read these models

            return f"unconfirmed (sync has not seen it on {crowd_for(self.hit.campaign).label} yet)"
        if self.confirmation != self.Confirmation.CONFIRMED:
            return self.get_confirmation_display().lower()
        if self.held:
            return self.get_held_display().lower()
        return "beyond the answers its HIT asked for"


class ReviewAction(models.Model):
    """Who did what, when: every reviewer decision on a unit, an answer or a worker, kept for good."""

    class Action(models.TextChoices):
        ACCEPT = "accept"
        OVERRIDE = "override"
        SEND_BACK = "send_back", "Send back for more answers"
        REJECT = "reject"
        APPROVE = "approve"
        BONUS = "bonus"
        BLOCK = "block"
        UNBLOCK = "unblock"
        PUBLISH = "publish"
        EXPIRE = "expire", "Expire HITs"
        EXTEND = "extend", "Extend HITs"
        DELETE = "delete", "Delete HITs"
        SHOW_AUTOMATIC = "show_automatic", "Show reviewers the automatic labels"
        HIDE_AUTOMATIC = "hide_automatic", "Withhold the automatic labels (blind review)"

    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=16, choices=Action.choices)
    unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.CASCADE, related_name="review_actions")
    answer = models.ForeignKey(Answer, null=True, blank=True, on_delete=models.CASCADE, related_name="review_actions")
    worker = models.ForeignKey(Worker, null=True, blank=True, on_delete=models.CASCADE, related_name="review_actions")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # What a dashboard user may do, each its own permission (see annotator/permissions.py for the groups).
        permissions = [
            ("view_dashboard", "Can read the review dashboard"),
            ("review_answers", "Can review units and answers (accept, override, send back, approve, reject, sync)"),
            ("pay_workers", "Can pay bonuses to workers"),
            ("moderate_workers", "Can block and unblock workers"),
            ("manage_hits", "Can expire, extend and delete MTurk HITs"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} at {self.created_at:%Y-%m-%d %H:%M}"


class Bonus(models.Model):
    """A bonus paid to a worker for one assignment; the token makes a retried payment happen once."""

    answer = models.ForeignKey(Answer, on_delete=models.PROTECT, related_name="bonuses")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="bonuses")
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    reason = models.CharField(max_length=1024)
    token = models.CharField(max_length=64, unique=True)
    actor = models.CharField(max_length=150)
    paid = models.BooleanField(default=False, help_text="MTurk accepted the payment")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"${self.amount} to {self.worker_id} for answer {self.answer_id}"


class ProlificSession(models.Model):
    """One participant's way through a campaign's Prolific study: the HITs they answer, and their
    submission on Prolific (one a participant and study; SESSION_ID names it), mirrored by sync."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="prolific_sessions")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="prolific_sessions")
    study_id = models.CharField(max_length=64)
    session_id = models.CharField(max_length=64, help_text="Prolific's SESSION_ID (its submission's id)")
    status = models.CharField(max_length=32, blank=True, help_text="The submission's status on Prolific, from sync")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True, help_text="Sent back to Prolific with the code")
    reviewed = models.CharField(max_length=16, blank=True, help_text="approved or rejected by us on Prolific")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "worker"], name="prolific_session_unique")]

    def __str__(self) -> str:
        return f"{self.worker.external_id} in {self.campaign.name}"
