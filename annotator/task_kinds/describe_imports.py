"""The describe task's answers made elsewhere: the authors' released CSV (one row a unit, answers
side by side: desc1, cat1, prec1, desc2, ...) and a long CSV (one row an answer, with its worker).
Each answer is read by the HIT form's rules (a description as long as the stored field: the authors'
answers hold sentences of up to 76 characters, beyond the form's one or two words)."""

from __future__ import annotations

import math
from typing import Any

from django import forms

from annotator.forms import description_clean
from annotator.models import CATEGORY_CODES, Category
from annotator.task_kinds.base import ImportFormat

WIDE = ("layer", "unit", "desc1", "cat1", "prec1")
LONG = ("network", "layer", "unit", "worker", "description", "category", "precision")
IMPORT_DESCRIPTION_MAX = 200


def _category(text: str) -> str:
    text = text.strip().lower()
    if text.isdigit() and int(text) in CATEGORY_CODES:
        return CATEGORY_CODES[int(text)].value
    if text in Category.values:
        return text
    by_label = {label.lower(): value for value, label in Category.choices}
    if text in by_label:
        return by_label[text]
    raise ValueError(f"category {text!r} is not a code 1-6 or one of {', '.join(Category.values)}")


def _precision(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"precision {text[:40]!r} is not a number between 0 and 1") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"precision {text!r} is not between 0 and 1")
    return value


def _description(text: str) -> str:
    try:
        return description_clean(text, IMPORT_DESCRIPTION_MAX)
    except forms.ValidationError as error:
        raise ValueError(
            f"description {text[:40]!r}{'...' if len(text) > 40 else ''}: {' '.join(error.messages)}"
        ) from None


def _values(description: str, category: str, precision: str) -> dict[str, Any]:
    return {
        "description": _description(description),
        "category": _category(category),
        "precision": _precision(precision),
    }


class WideFormat(ImportFormat):
    name = "the wide format"
    columns = WIDE
    per_worker = False

    def answers(self, header: list[str], row: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for i in sorted(int(name[4:]) for name in header if name.startswith("desc") and name[4:].isdigit()):
            desc, cat, prec = (row.get(f"{name}{i}") or "" for name in ("desc", "cat", "prec"))
            if not (desc.strip() or cat.strip() or prec.strip()):
                continue
            if not desc.strip():
                raise ValueError(f"answer {i} has no description")
            found.append((str(i), _values(desc, cat, prec)))
        if not found:
            raise ValueError("no answers")
        return found


class LongFormat(ImportFormat):
    name = "the long one"
    columns = LONG
    per_worker = True

    def answers(self, header: list[str], row: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
        description = (row.get("description") or "").strip()
        if not description:
            raise ValueError("empty description")
        return [("", _values(description, row.get("category") or "", row.get("precision") or ""))]
