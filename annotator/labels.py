"""From several workers' answers to one unit label (METHOD stage 6). Plain Python, no database: the
aggregation service feeds it rows, the tests feed it lists.

Descriptions are compared after normalising case, spacing, punctuation, plurals and stock phrasing
("a bunch of cars", "Cars!" and "car" are one label); the label shown is the consensus's most
frequent original spelling, normalised."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import inflect

STOCK_PREFIXES = (
    "a bunch of",
    "bunch of",
    "a lot of",
    "lots of",
    "a group of",
    "group of",
    "a pile of",
    "pile of",
    "a close up of",
    "close up of",
    "closeup of",
    "a picture of",
    "picture of",
    "an image of",
    "image of",
    "a photo of",
    "photo of",
    "many",
    "some",
    "several",
    "various",
    "the",
    "a",
    "an",
)
STOCK_SUFFIXES = ("in the images", "in images", "in the picture", "images", "in them")
_KEEP = re.compile(r"(ss|us|is|os|as|ics)$")  # glass, bus, tennis, ...: not plurals
_engine = inflect.engine()


@lru_cache(maxsize=20000)
def singular(word: str) -> str:
    if len(word) <= 3 or _KEEP.search(word):
        return word
    result = _engine.singular_noun(word)
    return result if result else word


def normalise(description: str) -> str:
    """The comparison key of a description: lower case, words only, singular, no stock phrasing."""
    text = re.sub(r"[^\w\s-]", " ", description.lower()).replace("_", " ")
    text = " ".join(text.replace("-", " ").split())
    changed = True
    while changed and text:
        changed = False
        for prefix in STOCK_PREFIXES:
            if text.startswith(prefix + " "):
                text, changed = text[len(prefix) + 1 :], True
        for suffix in STOCK_SUFFIXES:
            if text.endswith(" " + suffix):
                text, changed = text[: -len(suffix) - 1], True
    return " ".join(singular(word) for word in text.split())


@dataclass(frozen=True)
class Vote:
    """One answer, as aggregation sees it."""

    description: str
    category: str
    precision: float
    weight: float = 1.0


@dataclass
class UnitResult:
    label: str = ""
    category: str = ""
    precision: float | None = None
    status: str = "pending"
    answers: int = 0
    answers_needed: int = 0
    label_agreement: float | None = None
    category_agreement: float | None = None
    flags: list[str] = field(default_factory=list)


def aggregate(votes: Sequence[Vote], needed: int, threshold: float, category: str | None = None) -> UnitResult:
    """Label (consensus of normalised descriptions), category (majority, or `category` when a
    quality-weighted model chose it), precision (mean), agreements, and the status.

    A unit is a detector when its mean precision reaches `threshold` (UNIT_DETECTOR_THRESHOLD). With fewer
    answers than `needed` it stays pending; a detector whose category has no majority is flagged
    for review (status needs_review: still a detector, its type unsettled)."""
    result = UnitResult(answers=len(votes), answers_needed=needed)
    if not votes:
        return result
    keys = [normalise(v.description) for v in votes]
    counts = Counter(k for k in keys if k)
    if counts:
        weight = {k: sum(v.precision for v, kk in zip(votes, keys, strict=True) if kk == k) for k in counts}
        best = max(counts, key=lambda k: (counts[k], weight[k], -len(k), k))
        result.label = best
        result.label_agreement = counts[best] / len(votes)
    categories = Counter(v.category for v in votes)
    top, top_count = max(categories.items(), key=lambda item: (item[1], item[0]))
    majority = top_count * 2 > len(votes)
    result.category = category or top
    result.category_agreement = categories[result.category] / len(votes)
    result.precision = sum(v.precision for v in votes) / len(votes)
    if len(votes) < needed:
        result.status = "pending"
        return result
    if not majority and category is None:
        result.flags.append(f"category split: {', '.join(f'{c} {n}' for c, n in sorted(categories.items()))}")
    detector = result.precision >= threshold
    # Only a detector's category is reported, so only a detector's split needs a reviewer.
    result.status = ("needs_review" if result.flags else "detector") if detector else "not_detector"
    return result


NETDISSECT_CATEGORIES = {
    "object": "object",
    "part": "part",
    "scene": "scene",
    "texture": "texture",
    "material": "texture",
    "color": "color",
}


def netdissect_label(label: str) -> str:
    """Network Dissection's concept name as a person would write it: `street-s` (a scene) and
    `red-c` (a colour) lose their suffix, `mountain_snowy` its underscore."""
    return re.sub(r"-[sc]$", "", label.strip()).replace("_", " ")
