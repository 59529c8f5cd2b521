"""The data model, in the order data flows: dissection rows, then annotation rows."""
from annotator.models.annotation import (
    Answer,
    Assignment,
    Campaign,
    Hit,
    HitImage,
    Worker,
)
from annotator.models.choices import CATEGORY_CODES, Category
from annotator.models.dissection import (
    ActivationChunk,
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

__all__ = [
    "CATEGORY_CODES", "ActivationChunk", "Answer", "Assignment", "Campaign", "Category", "Dissection", "Hit",
    "HitImage", "Image", "ImageSet", "ImageSweep", "Layer", "Network", "ReceptiveField", "Segmentation",
    "TopImage", "Unit", "UnitLabel", "Worker",
]
