"""The HIT form: the same rules for local annotators and Mechanical Turk workers. The browser applies
the simple ones too (required, maximum length); the server applies them all."""
from __future__ import annotations

import re

from django import forms

from annotator.models import Category

DESCRIPTION_MAX = 64
_FORBIDDEN = re.compile(r"[<>{}\\`\x00-\x1f\x7f]")  # markup, template and control characters

CATEGORY_EXAMPLES = {
    Category.SCENE: "kitchen, corridor, street, beach",
    Category.OBJECT: "bed, car, building, tree",
    Category.REGION: "road, grass, wall, floor, sky",
    Category.PART: "leg, head, wheel, roof",
    Category.TEXTURE: "striped, rugged, wooden, plastic",
    Category.COLOR: "vertical line, curved line, colour blue",
}


class HitAnswerForm(forms.Form):
    """Task 1 `description`, task 2 `mismatch` (slot positions), task 3 `category`."""

    description = forms.CharField(
        max_length=DESCRIPTION_MAX, strip=True,
        error_messages={"required": "Write one or two words for what the highlighted regions share.",
                        "max_length": f"Keep the description to {DESCRIPTION_MAX} characters or fewer "
                                      "(one or two words are best)."})
    mismatch = forms.TypedMultipleChoiceField(
        required=False, coerce=int,
        error_messages={"invalid_choice": "Image %(value)s is not part of this HIT; reload the page and mark "
                                          "the images again."})
    category = forms.ChoiceField(
        choices=Category.choices, widget=forms.RadioSelect,
        error_messages={"required": "Choose the category of your description.",
                        "invalid_choice": "Choose one of the six categories."})

    def __init__(self, *args, positions: list[int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mismatch"].choices = [(str(p), str(p)) for p in positions]

    def clean_description(self) -> str:
        text = " ".join(self.cleaned_data["description"].split())
        if not text:
            raise forms.ValidationError(self.fields["description"].error_messages["required"])
        if _FORBIDDEN.search(text):
            raise forms.ValidationError("Use words only: no < > { } \\ ` or control characters.")
        return text

    def marked(self) -> set[int]:
        """Positions marked in the submitted data, valid or not: re-shown as they were sent."""
        if self.is_bound and not hasattr(self, "cleaned_data"):
            self.is_valid()
        if hasattr(self, "cleaned_data") and "mismatch" in self.cleaned_data:
            return set(self.cleaned_data["mismatch"])
        values = self.data.getlist("mismatch") if hasattr(self.data, "getlist") else self.data.get("mismatch", [])
        return {int(v) for v in values if str(v).isdigit()}
