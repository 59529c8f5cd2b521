"""What the dashboard reads of the automatic labels (Network Dissection's, computed here or imported):
which label stands for a unit, whether it agrees with the crowd's (one rule, `agree`), the crowd and
automatic labels side by side, and a layer's summary in the paper's terms."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from annotator.labels import normalise
from annotator.models import AutoLabel, Layer, Unit, UnitLabel


def _related_label(unit: Unit) -> UnitLabel | None:
    from annotator.selectors.dashboard import related_or_none

    return related_or_none(unit, "label")


AUTO_SOURCES = {"iou": "Network Dissection (computed here)", "netdissect": "Network Dissection (imported tally)"}


def agree(crowd: UnitLabel | None, auto: AutoLabel) -> bool:
    """The one rule for "the crowd and the automatic label agree": both call the unit a detector, with
    the same label once normalised."""
    return bool(
        crowd is not None
        and crowd.is_detector
        and auto.detector
        and crowd.final_label
        and normalise(crowd.final_label) == normalise(auto.label)
    )


def first_auto_labels(layer: Layer) -> dict[int, AutoLabel]:
    """unit id -> its automatic label, the one computed here before an imported one."""
    out: dict[int, AutoLabel] = {}
    rank = {source: i for i, source in enumerate(AUTO_SOURCES)}
    for row in AutoLabel.objects.filter(unit__layer=layer):
        held = out.get(row.unit_id)
        if held is None or rank.get(row.source, len(rank)) < rank.get(held.source, len(rank)):
            out[row.unit_id] = row
    return out


@dataclass
class ComparisonRow:
    unit: Unit
    crowd: UnitLabel | None
    auto: AutoLabel
    label_match: bool
    category_match: bool

    @property
    def crowd_detector(self) -> bool:
        return bool(self.crowd and self.crowd.is_detector)


@dataclass
class Comparison:
    rows: list[ComparisonRow]
    both: int = 0
    crowd_only: int = 0
    auto_only: int = 0
    neither: int = 0
    label_agree: int = 0
    category_agree: int = 0

    @property
    def label_rate(self) -> float | None:
        return self.label_agree / self.both if self.both else None

    @property
    def category_rate(self) -> float | None:
        return self.category_agree / self.both if self.both else None


def netdissect_comparison(layer: Layer, source: str = "netdissect") -> Comparison:
    """Crowd and automatic labels of the same units. Agreement is counted over units that both call
    detectors: same label after normalising, same category (NetDissect's material counts as texture)."""
    autos = (
        AutoLabel.objects.filter(unit__layer=layer, source=source).select_related("unit__label").order_by("unit__index")
    )
    result = Comparison(rows=[])
    for auto in autos:
        crowd = _related_label(auto.unit)
        label_match = bool(crowd and crowd.final_label and normalise(crowd.final_label) == normalise(auto.label))
        category_match = bool(crowd and crowd.final_category and crowd.final_category == auto.category)
        row = ComparisonRow(auto.unit, crowd, auto, label_match, category_match)
        result.rows.append(row)
        if row.crowd_detector and auto.detector:
            result.both += 1
            result.label_agree += agree(crowd, auto)
            result.category_agree += category_match
        elif row.crowd_detector:
            result.crowd_only += 1
        elif auto.detector:
            result.auto_only += 1
        else:
            result.neither += 1
    return result


def auto_label_sources(layer: Layer) -> list[str]:
    """The automatic labels a layer has, computed here first."""
    found = set(AutoLabel.objects.filter(unit__layer=layer).values_list("source", flat=True).distinct())
    return sorted(found, key=lambda s: (list(AUTO_SOURCES).index(s) if s in AUTO_SOURCES else len(AUTO_SOURCES), s))


@dataclass
class AutoSummary:
    """A layer's automatic labels in the paper's terms: detectors, the concepts they cover, how many of
    each category, and the detectors' labels most frequent first (the bar graph of Bau et al.)."""

    source: str
    units: int
    detectors: int
    concepts: int
    per_category: list[tuple[str, int]]
    bars: list[tuple[str, int, float]]  # (label, units, share of the largest bar)


def auto_summary(layer: Layer, source: str = "iou") -> AutoSummary | None:
    rows = list(AutoLabel.objects.filter(unit__layer=layer, source=source))
    if not rows:
        return None
    detectors = [row for row in rows if row.detector]
    per_category = Counter(row.source_category or row.category for row in detectors)
    labels = sorted(Counter(row.label for row in detectors).items(), key=lambda item: (-item[1], item[0]))
    most = labels[0][1] if labels else 1
    return AutoSummary(
        source,
        len(rows),
        len(detectors),
        len(labels),
        per_category.most_common(),
        [(label, n, n / most) for label, n in labels],
    )


def layers_with_auto_labels(network_id: int) -> set[int]:
    return set(
        AutoLabel.objects.filter(unit__layer__network_id=network_id).values_list("unit__layer_id", flat=True).distinct()
    )
