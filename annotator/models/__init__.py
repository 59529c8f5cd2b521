"""The data model, in the order data flows: dissection rows, then annotation rows."""

from annotator.models.annotation import (
    Answer,
    Assignment,
    Bonus,
    Campaign,
    Hit,
    HitImage,
    ProlificSession,
    ReviewAction,
    Worker,
)
from annotator.models.choices import CATEGORY_CODES, Category
from annotator.models.dissection import (
    ActivationChunk,
    AutoLabel,
    Dissection,
    Image,
    ImageSet,
    ImageSweep,
    Layer,
    Network,
    ReceptiveField,
    Segmentation,
    TopImage,
    Unit,
    UnitLabel,
)
from annotator.models.presence import PresenceDraw, UnitEvaluation

__all__ = [
    "CATEGORY_CODES",
    "ActivationChunk",
    "Answer",
    "Assignment",
    "AutoLabel",
    "Bonus",
    "Campaign",
    "Category",
    "Dissection",
    "Hit",
    "HitImage",
    "Image",
    "ImageSet",
    "ImageSweep",
    "Layer",
    "Network",
    "PresenceDraw",
    "ProlificSession",
    "ReceptiveField",
    "ReviewAction",
    "Segmentation",
    "TopImage",
    "Unit",
    "UnitEvaluation",
    "UnitLabel",
    "Worker",
]
