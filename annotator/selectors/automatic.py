"""What the dashboard reads of the automatic labels (Network Dissection's, computed here or imported):
which label stands for a unit, whether it agrees with the crowd's (one rule, `agree`), the crowd and
automatic labels side by side, and a layer's summary in the paper's terms. The dashboard's reads leave
out the units a blind review withholds (one rule, `withheld`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from annotator.labels import normalise
from annotator.models import AutoLabel, Campaign, Hit, Layer, PresenceDraw, ReviewAction, Unit, UnitLabel


def _related_label(unit: Unit) -> UnitLabel | None:
    from annotator.selectors.dashboard import related_or_none

    return related_or_none(unit, "label")


AUTO_SOURCES = {"iou": "Network Dissection (computed here)", "netdissect": "Network Dissection (imported tally)"}


@dataclass(frozen=True)
class Withheld:
    """The units whose automatic labels the dashboard withholds, each with the (name, id) of the
    campaigns that ask it to."""

    units: dict[int, frozenset[tuple[str, int]]]

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self.units

    def __len__(self) -> int:
        return len(self.units)

    @property
    def campaigns(self) -> list[tuple[str, int]]:
        """(name, id) of each campaign withholding them, by name."""
        return sorted(set().union(*self.units.values()))

    def only(self, unit_ids: set[int]) -> Withheld:
        return Withheld({u: campaigns for u, campaigns in self.units.items() if u in unit_ids})


NONE_WITHHELD = Withheld({})  # what the command line and campaign building pass: they read every label


def withheld(layer: Layer) -> Withheld:
    """The one rule for "the dashboard withholds this unit's automatic label": a campaign that asks
    about the unit (a HIT of it, or a presence draw of it) runs a blind review (`reviewers_see_automatic`
    off) and has not finished. Reviewers who judge the crowd's labels without the automatic one keep
    the later comparison of the two honest; a blind review ends when its campaign shows them or
    finishes. Annotators never see automatic labels, whatever the campaign says. A page computes it
    once and hands it to each read (`hidden`); a read given none computes it itself."""
    blind = Campaign.objects.filter(reviewers_see_automatic=False).exclude(status=Campaign.Status.FINISHED)
    # A unit with no automatic label has none to withhold.
    where = {"campaign__in": blind, "unit__layer": layer, "unit__auto_labels__isnull": False}
    fields = ("unit_id", "campaign__name", "campaign_id")
    rows = set(Hit.objects.filter(**where).order_by().values_list(*fields).distinct())
    rows |= set(PresenceDraw.objects.filter(**where).order_by().values_list(*fields).distinct())
    units: dict[int, set[tuple[str, int]]] = {}
    for unit, name, pk in rows:
        units.setdefault(unit, set()).add((name, pk))
    return Withheld({unit: frozenset(campaigns) for unit, campaigns in units.items()})


def visibility_changes(campaign: Campaign) -> list[ReviewAction]:
    """Who showed or withheld the campaign's automatic labels, and when: newest first."""
    kinds = (ReviewAction.Action.SHOW_AUTOMATIC, ReviewAction.Action.HIDE_AUTOMATIC)
    return list(ReviewAction.objects.filter(action__in=kinds, details__campaign=campaign.name))


def unit_auto_labels(unit: Unit, hidden: Withheld) -> tuple[list[AutoLabel], Withheld]:
    """A unit page's automatic labels (prefetched), none while a blind review withholds them (`hidden`:
    its layer's), with what withholds them."""
    mine = hidden.only({unit.pk})
    return ([] if mine else list(unit.auto_labels.all())), mine


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


def first_auto_labels(layer: Layer, *, hidden: Withheld | None = None) -> dict[int, AutoLabel]:
    """unit id -> its automatic label, the one computed here before an imported one (the dashboard's
    reads withhold a blind review's units; the command line and campaign building read them all)."""
    out: dict[int, AutoLabel] = {}
    rank = {source: i for i, source in enumerate(AUTO_SOURCES)}
    hidden = withheld(layer) if hidden is None else hidden
    for row in AutoLabel.objects.filter(unit__layer=layer).exclude(unit_id__in=list(hidden.units)):
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
    withheld: Withheld = NONE_WITHHELD  # units left out by a blind review

    @property
    def label_rate(self) -> float | None:
        return self.label_agree / self.both if self.both else None

    @property
    def category_rate(self) -> float | None:
        return self.category_agree / self.both if self.both else None


def netdissect_comparison(layer: Layer, source: str = "netdissect", *, hidden: Withheld | None = None) -> Comparison:
    """Crowd and automatic labels of the same units. Agreement is counted over units that both call
    detectors: same label after normalising, same category (NetDissect's material counts as texture)."""
    hidden = withheld(layer) if hidden is None else hidden
    autos = (
        AutoLabel.objects.filter(unit__layer=layer, source=source)
        .exclude(unit_id__in=list(hidden.units))
        .select_related("unit__label")
        .order_by("unit__index")
    )
    result = Comparison(rows=[], withheld=hidden)
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
    withheld: Withheld = NONE_WITHHELD  # units left out by a blind review


def auto_summary(layer: Layer, source: str = "iou", *, hidden: Withheld | None = None) -> AutoSummary | None:
    """The summary of the units whose labels may be shown: a blind review's units are left out, so that
    the bar graph cannot name what they detect."""
    hidden = withheld(layer) if hidden is None else hidden
    every = list(AutoLabel.objects.filter(unit__layer=layer, source=source))
    if not every:
        return None
    rows = [row for row in every if row.unit_id not in hidden]
    labelled = {row.unit_id for row in every}
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
        hidden.only(labelled),
    )


def layers_with_auto_labels(network_id: int) -> set[int]:
    return set(
        AutoLabel.objects.filter(unit__layer__network_id=network_id).values_list("unit__layer_id", flat=True).distinct()
    )
