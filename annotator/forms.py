"""The HIT form: the same rules for every crowd's workers. The browser applies
the simple ones too (required, maximum length); the server applies them all."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from django import forms

from annotator.labels import normalise
from annotator.models import Category

DESCRIPTION_MAX = 64
_FORBIDDEN = re.compile(r"[<>{}\\`\x00-\x1f\x7f]")  # markup, template and control characters
# Characters nobody sees: controls, formatting (zero-width, bidi controls, tags), private use, unassigned.
_INVISIBLE = {"Cc", "Cf", "Co", "Cn", "Cs"}
# Letters that render as nothing (Hangul fillers, the braille blank), and the mark of undecodable bytes.
_BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\ufffd"}
_MARKS = {"Mn", "Me"}  # combining marks: allowed on a letter, at most two each (no stacked "zalgo")


def _stacked_marks(text: str) -> bool:
    """A combining mark with no letter under it, or more than two on one letter."""
    run, base = 0, False
    for c in text:
        if unicodedata.category(c) in _MARKS:
            run += 1
            if not base or run > 2:
                return True
        else:
            run, base = 0, unicodedata.category(c)[0] in "LN"
    return False


def description_clean(text: str, max_length: int = DESCRIPTION_MAX) -> str:
    """The rules every description meets, typed in the form or imported: NFKC-normalised (so
    look-alike letters and full-width forms compare equal), spaces folded, no markup or invisible
    characters, and some words left once stock phrasing is removed. ValidationError says which."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    if not text:
        raise forms.ValidationError("Write one or two words for what the highlighted regions share.")
    if _FORBIDDEN.search(text):
        raise forms.ValidationError("Use words only: no < > { } \\ ` or control characters.")
    if any(unicodedata.category(c) in _INVISIBLE or c in _BLANK_LETTERS for c in text):
        raise forms.ValidationError(
            "Use visible words only: invisible, blank, zero-width or text-direction characters (or bytes that "
            "are not text) are not allowed."
        )
    if _stacked_marks(text):
        raise forms.ValidationError("Use plain words: accents belong on a letter, at most two on each.")
    if len(text) > max_length:
        raise forms.ValidationError(
            f"Keep the description to {max_length} characters or fewer (one or two words are best)."
        )
    if not normalise(text):
        raise forms.ValidationError("Write what the regions share in words (letters or digits).")
    return text


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
        max_length=DESCRIPTION_MAX,
        strip=True,
        error_messages={
            "required": "Write one or two words for what the highlighted regions share.",
            "max_length": f"Keep the description to {DESCRIPTION_MAX} characters or fewer (one or two words are best).",
        },
    )
    mismatch = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        error_messages={
            "invalid_choice": "Image %(value)s is not part of this HIT; reload the page and mark the images again."
        },
    )
    category = forms.ChoiceField(
        choices=Category.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose the category of your description.",
            "invalid_choice": "Choose one of the six categories.",
        },
    )

    def __init__(self, *args, positions: list[int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["mismatch"]
        assert isinstance(field, forms.TypedMultipleChoiceField)  # declared above
        field.choices = [(str(p), str(p)) for p in positions]

    def positions(self) -> list[int]:
        """The HIT's slot positions, in order (the images the form shows)."""
        return [int(value) for value, _ in self.fields["mismatch"].choices]  # type: ignore[attr-defined]  # set above

    def clean_description(self) -> str:
        return description_clean(self.cleaned_data["description"])

    def marked(self) -> set[int]:
        """Positions marked in the submitted data, valid or not: re-shown as they were sent."""
        if self.is_bound and not hasattr(self, "cleaned_data"):
            self.is_valid()
        if hasattr(self, "cleaned_data") and "mismatch" in self.cleaned_data:
            return set(self.cleaned_data["mismatch"])
        values = self.data.getlist("mismatch") if hasattr(self.data, "getlist") else self.data.get("mismatch", [])
        return {int(v) for v in values if str(v).isdigit()}


class PresenceForm(forms.Form):
    """The presence task: "yes" or "no" for each image, one field per slot position (`image-<position>`);
    every image must be answered."""

    ANSWERS = (("yes", "Yes"), ("no", "No"))

    def __init__(self, *args, positions: list[int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._positions = list(positions)
        for number, position in enumerate(self._positions, start=1):
            self.fields[f"image-{position}"] = forms.ChoiceField(
                choices=self.ANSWERS,
                widget=forms.RadioSelect,
                error_messages={
                    "required": f"Answer Yes or No for image {number}.",
                    "invalid_choice": f"Answer Yes or No for image {number}.",
                },
            )

    def positions(self) -> list[int]:
        return list(self._positions)

    def ratings(self) -> dict[int, bool]:
        """The valid form's answers: slot position -> yes."""
        return {p: self.cleaned_data[f"image-{p}"] == "yes" for p in self._positions}

    def given(self) -> dict[int, str]:
        """What the submitted data says per position, valid or not: re-shown as it was sent."""
        if not self.is_bound:
            return {}
        return {p: v for p in self._positions if (v := str(self.data.get(f"image-{p}", ""))) in ("yes", "no")}


# Numbers a reviewer or a command types: each read by a form, so "nan", "1e999" or "12abc" get a clear
# message instead of a Python error.
class BonusForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_value=Decimal("100.00"),
        max_digits=8,
        decimal_places=2,
        error_messages={
            "invalid": "The bonus must be an amount of dollars, like 0.50.",
            "min_value": "A bonus is between $0.01 and $100.00.",
            "max_value": "A bonus is between $0.01 and $100.00.",
            "max_decimal_places": "A bonus is in whole cents (at most 2 decimal places).",
            "max_digits": "A bonus is between $0.01 and $100.00.",
            "required": "Give the bonus amount in dollars.",
        },
    )


class SendBackForm(forms.Form):
    more = forms.IntegerField(
        min_value=1,
        max_value=20,
        error_messages={
            "invalid": "The number of answers must be a whole number.",
            "required": "Say how many more answers.",
            "min_value": "Ask for between 1 and 20 more answers.",
            "max_value": "Ask for between 1 and 20 more answers.",
        },
    )


class ExtendForm(forms.Form):
    hours = forms.IntegerField(
        min_value=1,
        max_value=24 * 365,
        error_messages={
            "invalid": "Extend by a whole number of hours.",
            "required": "Say by how many hours to extend.",
            "min_value": "Extend by 1 to 8760 hours.",
            "max_value": "Extend by 1 to 8760 hours.",
        },
    )


class RuleReviewForm(forms.Form):
    min_seconds = forms.FloatField(
        min_value=0,
        max_value=24 * 3600,
        error_messages={
            "invalid": "The time limit must be a number of seconds.",
            "required": "Give the time limit in seconds.",
            "min_value": "The time limit is between 0 and 86400 seconds.",
            "max_value": "The time limit is between 0 and 86400 seconds.",
        },
    )


def numbers_clean(form_class: type[forms.Form], **data: object) -> dict:
    """The form's cleaned values; ValueError carries its messages, ready to show as they are."""
    form = form_class({name: "" if value is None else str(value) for name, value in data.items()})
    if not form.is_valid():
        raise ValueError(" ".join(str(message) for errors in form.errors.values() for message in errors))
    return form.cleaned_data
