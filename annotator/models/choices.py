"""Choices shared by the dissection and annotation rows."""

from django.db import models


class Category(models.TextChoices):
    """Task 3 of the HIT. The order and codes (1..6) are the ones in the authors' released data."""

    SCENE = "scene", "Scene"
    OBJECT = "object", "Object"
    REGION = "region", "Region or surface"
    PART = "part", "Object part"
    TEXTURE = "texture", "Texture or material"
    COLOR = "color", "Simple elements or colours"


CATEGORY_CODES = {
    1: Category.SCENE,
    2: Category.OBJECT,
    3: Category.REGION,
    4: Category.PART,
    5: Category.TEXTURE,
    6: Category.COLOR,
}
